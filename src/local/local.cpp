// Local / sparse attention: per (batch, head, query tile) task, online softmax (simd::attend)
// over the union of the tile's allowed key ranges, with the exact per-(row, key) set as mask.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../core/parallel_errors.hpp"
#include "../simd/lowp_heads.hpp"
#include "attnkit/error.hpp"
#include "attnkit/local.hpp"
#include "params.hpp"
#include "tiles.hpp"

namespace attnkit {

namespace {

// Keys per score tile: a banded tile's whole key range in one or a few balanced chunks (the
// union is only block_q - 1 keys wider than the window); full rows in 256-key tiles like exact.
int64_t key_block(const LocalOptions& o, const local::Tile& t, const std::vector<simd::KeySpan>& keys) {
  if (o.block_k) return o.block_k;
  if (t.global) return 256;
  int64_t widest = 1;
  for (const simd::KeySpan& s : keys) widest = std::max(widest, s.end - s.begin);
  return local::balanced_block(widest, 384);
}

// Copies the tile's keys (rows of one head, `stride` apart) into a dense buffer, `cols` wide.
void gather_rows(const local::Gather& g, const float* src, int64_t stride, int64_t cols, std::vector<float>& buf) {
  buf.resize(static_cast<size_t>(g.rows() * cols));
  float* dst = buf.data();
  for (int64_t j = 0; j < g.globals; ++j) std::memcpy(dst + j * cols, src + j * stride, sizeof(float) * cols);
  for (int64_t x = 0; x < g.count; ++x)
    std::memcpy(dst + (g.globals + x) * cols, src + (g.first + g.step * x) * stride, sizeof(float) * cols);
}

constexpr Capabilities kLocalCaps{.causal = true, .key_lengths = true, .cross = true, .gqa = true, .weights = true};

}  // namespace

LocalBackend::LocalBackend(LocalOptions o) : opt_(o) {
  LocalPattern(o, 1, 1, false);  // validates the options (params.hpp: ranges; LocalPattern: rules)
}

std::string LocalBackend::spec() const { return local::local_values(opt_).canonical(); }

Capabilities LocalBackend::capabilities() const {
  Capabilities c = kLocalCaps;
  c.weights = opt_.precision == ComputePrecision::fp32;  // the reduced-precision probabilities are not formed
  return c;
}

void LocalBackend::forward(const Problem& p) const {
  const Shape d = check(p);
  const LocalPattern pat(opt_, d.n_q, d.n_k, p.mask.causal);
  const std::vector<local::Tile> tiles = local::plan_tiles(pat, d.n_q, d.n_k);
  const int64_t bh = d.batch * d.heads;
  const int64_t tasks = static_cast<int64_t>(tiles.size()) * bh;
  const float scale = p.effective_scale();
  const bool lowp = opt_.precision != ComputePrecision::fp32;
  if (lowp) simd::lowp_path_name();  // a bad ATTNKIT_SIMD throws here, not inside the parallel region
  // precision=bf16|int8: K/V of every (batch, kv head) packed once; a gathered (dilated) tile packs
  // its own gathered keys below.
  const std::vector<simd::LowpKV> heads_kv = lowp ? lowp::pack_heads(p, d, opt_.precision) : std::vector<simd::LowpKV>();
  ParallelErrors errors;  // an exception (bad_alloc) leaves the region for the caller, not as an abort
#pragma omp parallel
  {
    simd::Workspace ws;
    simd::LowpKV tile_kv;
    local::RowSpans mask;
    local::Gather gather;
    std::vector<KeyRun> runs, rows_runs;
    std::vector<simd::KeySpan> keys;
    std::vector<float> kbuf, vbuf;
    // Tile-major order: the global (full) rows come first, then the banded tiles.
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t)
      errors.run([&] {
        const local::Tile& tile = tiles[static_cast<size_t>(t / bh)];
        const int64_t b = t % bh / d.heads, h = t % d.heads, g = h / d.group();
        local::build_tile(pat, tile, h, [&](int64_t i) { return p.key_end(b, i); }, mask, gather, runs, rows_runs);
        mask.union_into(keys);
        simd::AttendArgs a = simd::AttendArgs::for_head(p, b, h, g, tile.i0, tile.count, scale, tile.step);
        a.row0 = 0;  // the mask indexes the tile's rows from 0
        if (lowp) {
          const simd::LowpKV* kv = &heads_kv[static_cast<size_t>(b * d.kv_heads + g)];
          if (tile.gather && gather.rows() > 0) {  // no gathered key: empty spans, zero rows, any kv
            gather_rows(gather, p.k.row(b, g, 0), p.k.stride[2], d.d, kbuf);
            gather_rows(gather, p.v.row(b, g, 0), p.v.stride[2], d.d_v, vbuf);
            tile_kv.pack(lowp::to_simd(opt_.precision), kbuf.data(), d.d, vbuf.data(), d.d_v, gather.rows(), d.d, d.d_v);
            kv = &tile_kv;
          }
          simd::attend_lowp(a, *kv, keys, &mask, ws);
          return;
        }
        if (tile.gather) {
          gather_rows(gather, p.k.row(b, g, 0), p.k.stride[2], d.d, kbuf);
          gather_rows(gather, p.v.row(b, g, 0), p.v.stride[2], d.d_v, vbuf);
          a.k = kbuf.data();
          a.k_stride = d.d;
          a.v = vbuf.data();
          a.v_stride = d.d_v;
        }
        simd::attend(a, keys, &mask, key_block(opt_, tile, keys), ws);
      });
  }
  errors.rethrow();
}

Cost LocalBackend::computed_cost(const Shape& s) const {
  const LocalPattern pat(opt_, s.n_q, s.n_k, s.causal);
  const std::vector<local::Tile> tiles = local::plan_tiles(pat, s.n_q, s.n_k);
  local::RowSpans mask;
  local::Gather gather;
  std::vector<KeyRun> runs, rows_runs;
  std::vector<simd::KeySpan> keys;
  auto key_end = [&](int64_t i) { return s.causal ? std::clamp<int64_t>(i + s.n_k - s.n_q + 1, 0, s.n_k) : s.n_k; };
  double pairs = 0;
  const int64_t heads = pat.per_head() ? s.heads : 1;
  for (int64_t h = 0; h < heads; ++h)
    for (const local::Tile& t : tiles) {
      local::build_tile(pat, t, h, key_end, mask, gather, runs, rows_runs);
      mask.union_into(keys);
      for (const simd::KeySpan& k : keys) pairs += static_cast<double>(t.count) * (k.end - k.begin);
    }
  if (!pat.per_head()) pairs *= static_cast<double>(s.heads);
  Cost c = exact_cost(s);
  c.flops = static_cast<double>(s.batch) * pairs * 2.0 * (s.d + s.d_v);
  return c;
}

BackendInfo local_info() {
  return {"local",
          "sliding-window / dilated / global / BigBird block-sparse attention: exact softmax over N(i) only",
          local::local_params(),
          kLocalCaps,
          [](const Params& pr) {
            return std::make_unique<LocalBackend>(LocalOptions{pr.get_int("window"), pr.get_int("dilation"),
                                                               pr.get_int("global"), pr.get_int("blocks"),
                                                               pr.get_int("random"), pr.get_int("seed"),
                                                               pr.get_int("block_q"), pr.get_int("block_k"),
                                                               parse_precision("local", pr.get_string("precision"))});
          }};
}

}  // namespace attnkit
