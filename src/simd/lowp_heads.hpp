#pragma once
// Internal, header-only (used by exact, local and pruned, which link no common family library):
// the per-call packing of K and V for precision=bf16|int8 (issue 17) and its byte count.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../core/parallel_errors.hpp"
#include "lowp.hpp"
#include "attnkit/precision.hpp"
#include "attnkit/problem.hpp"

namespace attnkit::lowp {

inline simd::Precision to_simd(ComputePrecision p) {
  return p == ComputePrecision::bf16 ? simd::Precision::bf16 : p == ComputePrecision::int8 ? simd::Precision::int8
                                                                               : simd::Precision::fp32;
}

// Keys of batch b that any row can see: [0, key_lengths[b]) or all n_k; at least one key is packed
// (a padded-out batch is masked anyway) so that every LowpKV has the problem's d and d_v. Packing
// only the visible keys keeps padding out of int8's mean key and key scales.
inline int64_t packed_keys(const Problem& p, const Shape& d, int64_t b) {
  const int64_t limit = p.mask.key_lengths.empty() ? d.n_k : p.mask.key_lengths[static_cast<size_t>(b)];
  return std::max<int64_t>(1, std::min(limit, d.n_k));
}

// One packed K/V per (batch, kv head), index b·kv_heads + g, packed in parallel (O(n_k·(d + d_v))
// each). Call outside any parallel region; read-only afterwards, shared by every thread.
inline std::vector<simd::LowpKV> pack_heads(const Problem& p, const Shape& d, ComputePrecision prec) {
  std::vector<simd::LowpKV> kv(static_cast<size_t>(d.batch * d.kv_heads));
  const simd::Precision sp = to_simd(prec);
  ParallelErrors errors;  // the packs allocate O(n_k·(d + d_v)): bad_alloc for the caller, not an abort
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t bg = 0; bg < d.batch * d.kv_heads; ++bg)
    errors.run([&] {
      const int64_t b = bg / d.kv_heads, g = bg % d.kv_heads;
      kv[static_cast<size_t>(bg)].pack(sp, p.k.row(b, g, 0), p.k.stride[2], p.v.row(b, g, 0), p.v.stride[2],
                                       packed_keys(p, d, b), d.d, d.d_v);
    });
  errors.rethrow();
  return kv;
}

// Bytes of one packed K/V of n keys as lowp.hpp lays it out (keys padded to whole kKeyTile tiles,
// channels to the kernels' multiples), for Cost::bytes without packing.
inline double packed_bytes(ComputePrecision prec, int64_t n, int64_t d, int64_t d_v) {
  if (prec == ComputePrecision::fp32) return 0;
  auto up = [](int64_t x, int64_t m) { return (x + m - 1) / m * m; };
  const int64_t keys = up(n, simd::kKeyTile), tiles = keys / simd::kKeyTile;
  const double values = 2.0 * static_cast<double>(keys) * static_cast<double>(up(d_v, 16));
  if (prec == ComputePrecision::bf16) return 2.0 * static_cast<double>(keys) * static_cast<double>(up(d, 32)) + values;
  return static_cast<double>(keys) * static_cast<double>(up(d, 64)) + 4.0 * static_cast<double>(tiles + keys) + values;
}

// Cost::bytes of a precision variant: the float32 bytes plus the packed K/V, written once and
// read back by the kernels.
inline double extra_bytes(ComputePrecision prec, const Shape& s) {
  return 2.0 * static_cast<double>(s.batch * s.kv_heads) * packed_bytes(prec, s.n_k, s.d, s.d_v);
}

}  // namespace attnkit::lowp
