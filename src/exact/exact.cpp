// Streaming exact attention: per (batch, head, query block) task, online softmax over key tiles
// with the SIMD tile kernel of src/simd (no BLAS calls, so no BLAS threading to manage).
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "../simd/attend.hpp"
#include "attnkit/error.hpp"
#include "attnkit/exact.hpp"
#include "attnkit/simd.hpp"

namespace attnkit {

namespace {

int64_t l2_bytes() {
  const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  return l2 > 0 ? l2 : 1 << 20;  // unknown: assume 1 MiB
}

struct Blocks {
  int64_t q, k;
};

// Block sizes when the spec leaves them at 0 (auto), from the L2 size (sysconf) and d, d_v.
// One task's working set is
//   scores bk·bq + transposed queries d·bq + accumulator bq·d_v + the K and V rows bk·(d + d_v)
// floats; it must stay in the core's L2 (budget: half of it, the rest for the streamed K/V and
// the other hyperthread). Prefer bq = 256 (K/V rows are re-read once per query block, so a bigger
// bq means less traffic, and it is a multiple of the 64 queries of an AVX-512 micro-tile) and
// bk = 252 (a multiple of the 6-key micro-tile); shrink bq first, then bk, down to 32 and 48.
// With 2 MiB of L2 and d = 64 (128) that is 512 (768) KiB. Measured on this project's machine
// (AVX-512 Xeon, 2 MiB L2, n = 4096): bq 128/512 and bk 120/504 were within the noise of
// 256 x 252. Then keep at least 4 tasks per thread so that dynamic scheduling can balance causal
// work, and no more padded rows than the next multiple of 16 (bq may depend on the thread count:
// rows are independent, results do not). Finally split n_k into equal key tiles (below).
Blocks choose_blocks(const Shape& d, int64_t want_q, int64_t want_k) {
  int64_t bq = want_q ? want_q : 256, bk = want_k ? want_k : 252;
  const auto bytes = [&] { return 4 * (bk * bq + d.d * bq + bq * d.d_v + bk * (d.d + d.d_v)); };
  const int64_t budget = l2_bytes() / 2;
  while (bytes() > budget && ((!want_q && bq > 32) || (!want_k && bk > 48))) {
    if (!want_q && bq > 32 && (bq >= bk || want_k || bk <= 48))
      bq /= 2;
    else
      bk = std::max<int64_t>(48, bk / 2 / 6 * 6);
  }
  if (!want_q) {
    const int64_t threads = omp_get_max_threads();
    const auto tasks = [&] { return d.batch * d.heads * ((d.n_q + bq - 1) / bq); };
    while (bq > 32 && tasks() < 4 * threads) bq /= 2;
    bq = std::min(bq, (d.n_q + 15) / 16 * 16);  // no padded rows beyond the next multiple of 16
  }
  if (!want_k) {
    // Equal tiles rather than full ones and a runt (n_k = 512: 3 x 174, not 252 + 252 + 8: a
    // whole softmax and accumulator pass for 8 keys). From n_k only, never from the query block
    // or the thread count, so that every row sees the same tiles: bit-identical for any threads.
    const int64_t nk = std::max<int64_t>(d.n_k, 1), tiles = (nk + bk - 1) / bk;
    bk = std::min(bk, ((nk + tiles - 1) / tiles + 5) / 6 * 6);
  }
  return {bq, bk};
}

// exact's options, written once: the constructor checks them against this table, spec() prints
// them through it, exact_info() lists it.
std::vector<ParamDef> exact_params() {
  return {{"block_q", ParamType::Int, "0", 0, 4096, "query rows per tile (0 = auto from d and caches)"},
          {"block_k", ParamType::Int, "0", 0, 8192, "keys per tile (0 = auto from d and caches)"}};
}

Params exact_values(const ExactOptions& o) {
  return Params("exact", exact_params(), {{"block_q", std::to_string(o.block_q)}, {"block_k", std::to_string(o.block_k)}});
}

constexpr Capabilities kExactCaps{.causal = true, .key_lengths = true, .cross = true, .gqa = true, .weights = true};

}  // namespace

ExactBackend::ExactBackend(ExactOptions o) : opt_(o) { exact_values(o); }

std::string ExactBackend::spec() const { return exact_values(opt_).canonical(); }

Capabilities ExactBackend::capabilities() const { return kExactCaps; }

void ExactBackend::forward(const Problem& p) const {
  const Shape d = check(p);
  const Blocks blocks = choose_blocks(d, opt_.block_q, opt_.block_k);
  const int64_t bq = blocks.q, bk = blocks.k;
  const int64_t qblocks = (d.n_q + bq - 1) / bq;
  const int64_t tasks = d.batch * d.heads * qblocks;
  const float scale = p.effective_scale();
  simd_path();  // a bad ATTNKIT_SIMD throws here, not inside the parallel region
#pragma omp parallel
  {
    simd::Workspace ws;
    // Heaviest (last, under causal) query blocks first: dynamic schedule over a reversed order.
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t qb = qblocks - 1 - t % qblocks;
      const int64_t bh = t / qblocks, b = bh / d.heads, h = bh % d.heads, g = h / d.group();
      const int64_t r0 = qb * bq, rows = std::min(bq, d.n_q - r0);
      const int64_t limit = p.mask.key_lengths.empty() ? d.n_k : p.mask.key_lengths[static_cast<size_t>(b)];
      const simd::PrefixMask mask(limit, d.n_k - d.n_q, p.mask.causal);
      const simd::KeySpan span{0, mask.end(r0 + rows - 1)};
      const simd::AttendArgs a = simd::AttendArgs::for_head(p, b, h, g, r0, rows, scale);
      simd::attend(a, std::span<const simd::KeySpan>(&span, 1), &mask, bk, ws);
    }
  }
}

void ExactBackend::weights(const Problem& p, int64_t b, int64_t h, float* w) const {
  ReferenceBackend().weights(p, b, h, w);
}

BackendInfo exact_info() {
  return {"exact",
          "fused tiled online-softmax attention (FlashAttention-style), float32, never stores n x n",
          exact_params(),
          kExactCaps,
          [](const Params& pr) {
            return std::make_unique<ExactBackend>(ExactOptions{pr.get_int("block_q"), pr.get_int("block_k")});
          }};
}

}  // namespace attnkit
