// Streaming exact attention: per (batch, head, query block) task, online softmax over key tiles
// with the SIMD tile kernel of src/simd (no BLAS calls, so no BLAS threading to manage).
#include <omp.h>

#include <algorithm>
#include <vector>

#include "../core/parallel_errors.hpp"
#include "../simd/attend.hpp"
#include "../simd/blocks.hpp"
#include "../simd/lowp_heads.hpp"
#include "attnkit/error.hpp"
#include "attnkit/exact.hpp"
#include "attnkit/simd.hpp"

namespace attnkit {

namespace {

// exact's options, written once: the constructor checks them against this table, spec() prints
// them through it, exact_info() lists it.
std::vector<ParamDef> exact_params() {
  return {{"block_q", ParamType::Int, "0", 0, 4096, "query rows per tile (0 = auto from d and caches)"},
          {"block_k", ParamType::Int, "0", 0, 8192, "keys per tile (0 = auto from d and caches)"},
          precision_param()};
}

// The options checked against the table; fp32 leaves the precision out of the canonical spec
// (attnkit/precision.hpp, spec_params).
Params exact_values(const ExactOptions& o) {
  std::vector<std::pair<std::string, std::string>> v{{"block_q", std::to_string(o.block_q)},
                                                     {"block_k", std::to_string(o.block_k)}};
  if (o.precision != ComputePrecision::fp32) v.emplace_back("precision", precision_name(o.precision));
  return Params("exact", spec_params(exact_params(), o.precision), v);
}

constexpr Capabilities kExactCaps{.causal = true, .key_lengths = true, .cross = true, .gqa = true, .weights = true};

}  // namespace

ExactBackend::ExactBackend(ExactOptions o) : opt_(o) { exact_values(o); }

std::string ExactBackend::spec() const { return exact_values(opt_).canonical(); }

Capabilities ExactBackend::capabilities() const {
  Capabilities c = kExactCaps;
  c.weights = opt_.precision == ComputePrecision::fp32;  // the reduced-precision probabilities are not formed
  return c;
}

Cost ExactBackend::cost(const Shape& s) const {
  Cost c = exact_cost(s);
  c.bytes += lowp::extra_bytes(opt_.precision, s);
  return c;
}

namespace {

// Every (batch, head, query block of bq rows) task on the OpenMP threads, heaviest (last, under
// causal) query blocks first: a dynamic schedule over a reversed order. body(args, spans, mask,
// kv_index, workspace) computes one block; kv_index = b · kv_heads + g.
template <class Body>
void for_each_block(const Problem& p, const Shape& d, int64_t bq, Body body) {
  const int64_t qblocks = (d.n_q + bq - 1) / bq;
  const int64_t tasks = d.batch * d.heads * qblocks;
  const float scale = p.effective_scale();
  ParallelErrors errors;  // an exception (bad_alloc) leaves the region for the caller, not as an abort
#pragma omp parallel
  {
    simd::Workspace ws;
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t)
      errors.run([&] {
        const int64_t qb = qblocks - 1 - t % qblocks;
        const int64_t bh = t / qblocks, b = bh / d.heads, h = bh % d.heads, g = h / d.group();
        const int64_t r0 = qb * bq, rows = std::min(bq, d.n_q - r0);
        const int64_t limit = p.mask.key_lengths.empty() ? d.n_k : p.mask.key_lengths[static_cast<size_t>(b)];
        const simd::PrefixMask mask(limit, d.n_k - d.n_q, p.mask.causal);
        const simd::KeySpan span{0, mask.end(r0 + rows - 1)};
        const simd::AttendArgs a = simd::AttendArgs::for_head(p, b, h, g, r0, rows, scale);
        body(a, std::span<const simd::KeySpan>(&span, 1), mask, b * d.kv_heads + g, ws);
      });
  }
  errors.rethrow();
}

// precision=bf16|int8: the same tasks as the fp32 path, on K/V packed once per call.
void forward_lowp(const Problem& p, const Shape& d, const simd::Blocks& blocks, int64_t want_q,
                  ComputePrecision prec) {
  // 64 query rows unless block_q says otherwise: the reduced-precision step keeps its scores,
  // probabilities and accumulator (rows x 128 keys, rows x d_v) in L1 then, and on AMX 64 rows
  // measured faster than 128 (n = 4096, d = 64, 2 threads). Never from the thread count (as
  // choose_blocks' may be): int8 has one query scale per block, so the block is part of the result.
  const int64_t bq = want_q ? blocks.q : 64;
  simd::lowp_path_name();  // a bad ATTNKIT_SIMD throws here, not inside the parallel region
  const std::vector<simd::LowpKV> kv = lowp::pack_heads(p, d, prec);
  for_each_block(p, d, bq,
                 [&](const simd::AttendArgs& a, std::span<const simd::KeySpan> spans, const simd::PrefixMask& mask,
                     int64_t kv_index, simd::Workspace& ws) {
                   simd::attend_lowp(a, kv[static_cast<size_t>(kv_index)], spans, &mask, ws);
                 });
}

}  // namespace

void ExactBackend::forward(const Problem& p) const {
  const Shape d = check(p);
  const simd::Blocks blocks = simd::choose_blocks(d, opt_.block_q, opt_.block_k);
  if (opt_.precision != ComputePrecision::fp32) return forward_lowp(p, d, blocks, opt_.block_q, opt_.precision);
  simd_path();  // a bad ATTNKIT_SIMD throws here, not inside the parallel region
  for_each_block(p, d, blocks.q,
                 [&](const simd::AttendArgs& a, std::span<const simd::KeySpan> spans, const simd::PrefixMask& mask,
                     int64_t, simd::Workspace& ws) { simd::attend(a, spans, &mask, blocks.k, ws); });
}

void ExactBackend::weights(const Problem& p, int64_t b, int64_t h, float* w) const {
  if (opt_.precision != ComputePrecision::fp32) Backend::weights(p, b, h, w);  // throws: not available
  ReferenceBackend().weights(p, b, h, w);
}

void ExactBackend::weights_rows(const Problem& p, int64_t b, int64_t h, const std::vector<int64_t>& rows,
                                float* w) const {
  if (opt_.precision != ComputePrecision::fp32) Backend::weights(p, b, h, w);  // throws: not available
  ReferenceBackend().weights_rows(p, b, h, rows, w);
}

BackendInfo exact_info() {
  return {"exact",
          "fused tiled online-softmax attention (FlashAttention-style), float32, never stores n x n",
          exact_params(),
          kExactCaps,
          [](const Params& pr) {
            return std::make_unique<ExactBackend>(ExactOptions{pr.get_int("block_q"), pr.get_int("block_k"),
                                                               parse_precision("exact", pr.get_string("precision"))});
          }};
}

}  // namespace attnkit
