// pruned: dynamic tile pruning. Per (batch, kv head) the key tiles are summarised once; then per
// (batch, head, query tile) task the kept key tiles are chosen (TilePlan::select) and computed
// exactly by the tile engine of `exact` (simd::attend) over the merged spans of kept tiles, with
// the causal / padding prefix mask: kept tiles run at exact's speed.
#include <omp.h>

#include <algorithm>

#include "../simd/attend.hpp"
#include "../core/blas_threads.hpp"
#include "../core/parallel_errors.hpp"
#include "../simd/lowp_heads.hpp"
#include "attnkit/adaptive.hpp"
#include "attnkit/error.hpp"
#include "attnkit/simd.hpp"
#include "pruned_plan.hpp"
#include "sets.hpp"

namespace attnkit {

namespace {

// Keys per engine tile: whole key tiles, up to ~256 keys (runs of adjacent kept tiles, the
// window's especially, then go through the engine in few, large tiles, as in exact).
int64_t engine_block(int64_t B) { return B >= 256 ? B : 256 / B * B; }

// The key-tile summaries of every (batch, kv head).
std::vector<adaptive::KeyTileStats> all_stats(const Problem& p, const Shape& d, const adaptive::TilePlan& plan) {
  std::vector<adaptive::KeyTileStats> st(static_cast<size_t>(d.batch * d.kv_heads));
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t bg = 0; bg < d.batch * d.kv_heads; ++bg) {
    const int64_t b = bg / d.kv_heads;
    const int64_t limit = p.mask.key_lengths.empty() ? d.n_k : p.mask.key_lengths[static_cast<size_t>(b)];
    plan.stats(p, b, bg % d.kv_heads, limit, st[static_cast<size_t>(bg)]);
  }
  return st;
}

// The kept keys of every row of (b, h) as forward() keeps them.
void head_keys(const Problem& p, const Shape& d, const adaptive::TilePlan& plan,
               const std::vector<adaptive::KeyTileStats>& st, int64_t b, int64_t h, adaptive::RowKeys& keys) {
  keys.clear();
  SingleThreadedBlas blas;
  adaptive::PlanScratch sc;
  std::vector<int64_t> kept;
  const int64_t B = plan.block();
  for (int64_t t = 0; t < plan.q_tiles(); ++t) {
    const int64_t i0 = t * B, i1 = std::min(d.n_q, i0 + B);
    plan.select(p, b, h, t, p.key_end(b, i1 - 1), st[static_cast<size_t>(b * d.kv_heads + h / d.group())], sc, kept);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t ke = p.key_end(b, i);
      for (int64_t u : kept)
        for (int64_t j = u * B; j < std::min(ke, (u + 1) * B); ++j) keys.idx.push_back(j);
      keys.end_row();
    }
  }
}

constexpr Capabilities kCaps{.causal = true, .key_lengths = true, .cross = true, .gqa = true, .weights = true};

// The one parameter table: constructor checks, spec() and pruned_info() all use it.
const std::vector<ParamDef>& pruned_params() {
  static const std::vector<ParamDef> defs = {
      {"block", ParamType::Int, "64", 1, 4096, "query and key tile size"},
      {"keep", ParamType::Int, "1024", 1, 1073741824.0, "key budget per query tile: ceil(keep/block) tiles in all"},
      {"window", ParamType::Int, "64", 0, 1073741824.0, "diagonal window always kept (causal: ending at the tile's last row)"},
      {"sinks", ParamType::Int, "64", 0, 1073741824.0, "the tiles of the first sinks keys are always kept"},
      {"score", ParamType::String, "mean", 0, 0, "tile importance: mean (pooled q . pooled k) or bound (Quest min/max bound)"},
      precision_param()};
  return defs;
}

// fp32 leaves the precision out of the canonical spec (attnkit/precision.hpp, spec_params).
Params pruned_resolve(const PrunedOptions& o) {
  std::vector<std::pair<std::string, std::string>> v{{"block", std::to_string(o.block)},
                                                     {"keep", std::to_string(o.keep)},
                                                     {"window", std::to_string(o.window)},
                                                     {"sinks", std::to_string(o.sinks)},
                                                     {"score", o.score == TileScore::Mean ? "mean" : "bound"}};
  if (o.precision != ComputePrecision::fp32) v.emplace_back("precision", precision_name(o.precision));
  return Params("pruned", spec_params(pruned_params(), o.precision), v);
}

}  // namespace

PrunedBackend::PrunedBackend(PrunedOptions o) : opt_(o) { pruned_resolve(o); }

std::string PrunedBackend::spec() const { return pruned_resolve(opt_).canonical(); }

Capabilities PrunedBackend::capabilities() const {
  Capabilities c = kCaps;
  c.weights = opt_.precision == ComputePrecision::fp32;  // the reduced-precision probabilities are not formed
  return c;
}

void PrunedBackend::forward(const Problem& p) const {
  const Shape d = check(p);
  const adaptive::TilePlan plan(opt_, d.n_q, d.n_k);
  const int64_t B = opt_.block, qt = plan.q_tiles();
  const int64_t tasks = d.batch * d.heads * qt;
  const float scale = p.effective_scale();
  SingleThreadedBlas blas;
  const std::vector<adaptive::KeyTileStats> st = all_stats(p, d, plan);
  const bool lowp = opt_.precision != ComputePrecision::fp32;
  if (lowp) simd::lowp_path_name();  // a bad ATTNKIT_SIMD throws here, not inside the parallel region
  const std::vector<simd::LowpKV> kv = lowp ? lowp::pack_heads(p, d, opt_.precision) : std::vector<simd::LowpKV>();
  ParallelErrors errors;  // an exception (bad_alloc) leaves the region for the caller, not as an abort
#pragma omp parallel
  {
    simd::Workspace ws;
    adaptive::PlanScratch sc;
    std::vector<int64_t> kept;
    std::vector<simd::KeySpan> spans;
#pragma omp for schedule(dynamic, 1)
    for (int64_t x = 0; x < tasks; ++x)
      errors.run([&] {
        const int64_t t = qt - 1 - x % qt;  // heaviest (last, causal) query tiles first
        const int64_t bh = x / qt, b = bh / d.heads, h = bh % d.heads, g = h / d.group();
        const int64_t i0 = t * B, rows = std::min(B, d.n_q - i0);
        const int64_t ke = p.key_end(b, i0 + rows - 1);
        plan.select(p, b, h, t, ke, st[static_cast<size_t>(b * d.kv_heads + g)], sc, kept);
        spans.clear();
        for (int64_t u : kept) {
          const int64_t j0 = u * B, j1 = std::min(ke, j0 + B);
          if (!spans.empty() && spans.back().end == j0)
            spans.back().end = j1;
          else
            spans.push_back({j0, j1});
        }
        const int64_t limit = p.mask.key_lengths.empty() ? d.n_k : p.mask.key_lengths[static_cast<size_t>(b)];
        const simd::PrefixMask mask(limit, d.n_k - d.n_q, p.mask.causal);
        const simd::AttendArgs a = simd::AttendArgs::for_head(p, b, h, g, i0, rows, scale);
        if (lowp)
          simd::attend_lowp(a, kv[static_cast<size_t>(b * d.kv_heads + g)], spans, &mask, ws);
        else
          simd::attend(a, spans, &mask, engine_block(B), ws);
      });
  }
  errors.rethrow();
}

Cost PrunedBackend::cost(const Shape& s) const {
  const adaptive::TilePlan plan(opt_, s.n_q, s.n_k);
  const int64_t B = opt_.block;
  double pairs = 0, score = 0;
  for (int64_t t = 0; t < plan.q_tiles(); ++t) {
    const int64_t i0 = t * B, rows = std::min(B, s.n_q - i0);
    const int64_t ke = s.causal ? std::clamp<int64_t>(i0 + rows - 1 + s.n_k - s.n_q + 1, 0, s.n_k) : s.n_k;
    const int64_t kept = plan.kept_count(t, ke, s.causal), cand = (ke + B - 1) / B;
    // The last kept tile may be cut by key_end; count whole tiles except past n_k.
    pairs += static_cast<double>(rows) * static_cast<double>(std::min(kept * B, ke));
    score += opt_.score == TileScore::Bound ? 2.0 * rows * cand * 2 * s.d : 2.0 * cand * s.d;
  }
  Cost c = exact_cost(s);
  c.flops = static_cast<double>(s.batch) * s.heads * (pairs * 2.0 * (s.d + s.d_v) + score);
  c.bytes += lowp::extra_bytes(opt_.precision, s);
  return c;
}

// The bound is exact arithmetic's on the kept tiles; bf16 / int8 rounding is far larger and has no
// checked bound: none is claimed (attnkit/precision.hpp).
std::optional<ErrorBound> PrunedBackend::error_bound(const Problem& p) const {
  if (opt_.precision != ComputePrecision::fp32) {
    check(p);
    return std::nullopt;
  }
  std::vector<int64_t> all(static_cast<size_t>(check(p).n_q));
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  return error_bound_rows(p, all);
}

std::optional<ErrorBound> PrunedBackend::error_bound_rows(const Problem& p, const std::vector<int64_t>& rows) const {
  const Shape d = check(p);
  for (int64_t i : rows)
    if (i < 0 || i >= d.n_q) detail::fail("rows: row ", i, "; expected rows in [0, ", d.n_q, ")");
  if (opt_.precision != ComputePrecision::fp32) return std::nullopt;
  const adaptive::TilePlan plan(opt_, d.n_q, d.n_k);
  SingleThreadedBlas blas;
  const std::vector<adaptive::KeyTileStats> st = all_stats(p, d, plan);
  return adaptive::set_error_bound(
      p, d,
      "pruned: eps_i = full-softmax mass outside the kept tiles (fp64); prob L1 = 2 eps_i; "
      "||O~_i - O_i||_2 <= 2 eps_i max_{visible j} ||v_j||_2",
      [&](int64_t b, int64_t h, adaptive::RowKeys& keys) { head_keys(p, d, plan, st, b, h, keys); },
      &rows);
}

void PrunedBackend::weights(const Problem& p, int64_t b, int64_t h, float* w) const {
  const Shape d = check_weights(p, b, h, w);
  if (opt_.precision != ComputePrecision::fp32) Backend::weights(p, b, h, w);  // throws: not available
  const adaptive::TilePlan plan(opt_, d.n_q, d.n_k);
  std::vector<adaptive::KeyTileStats> st;
  {
    SingleThreadedBlas blas;
    st = all_stats(p, d, plan);
  }
  adaptive::RowKeys keys;
  head_keys(p, d, plan, st, b, h, keys);
  adaptive::set_weights(p, d, b, h, keys, w);
}

BackendInfo pruned_info() {
  return {"pruned",
          "dynamic tile pruning: per query tile the window, sink and best-scored key tiles (keep/block in all), computed exactly",
          pruned_params(),
          kCaps,
          [](const Params& pr) {
            const std::string& s = pr.get_string("score");
            if (s != "mean" && s != "bound") detail::fail("pruned: score=", s, "; expected mean or bound");
            return std::make_unique<PrunedBackend>(PrunedOptions{pr.get_int("block"), pr.get_int("keep"),
                                                                 pr.get_int("window"), pr.get_int("sinks"),
                                                                 s == "mean" ? TileScore::Mean : TileScore::Bound,
                                                                 parse_precision("pruned", pr.get_string("precision"))});
          }};
}

}  // namespace attnkit
