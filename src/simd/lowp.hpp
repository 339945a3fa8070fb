#pragma once
// Internal: reduced-precision attention tiles (issue 17). The same online-softmax tile loop as
// attend() (attend.hpp), with Q·Kᵀ and P·V computed as bf16 or int8 products:
//   bf16: Q, K, V rounded to bf16 (round to nearest even); Q·Kᵀ and P·V as bf16 products with fp32
//         accumulation; scale, max, exp and sums in fp32; the probabilities P rounded to bf16 for P·V.
//   int8: K minus its mean over the sequence (softmax is unchanged by a per-row constant, and the
//         range shrinks, as SageAttention does), then Q and K quantised symmetrically to int8 with
//         one fp32 scale max|x|/127 per query tile (the rows of one call) and per key tile of
//         kKeyTile keys; integer Q·Kᵀ with int32 accumulation (exact), dequantised to fp32 scores;
//         P·V as in bf16. A non-finite key makes its mean, and so every score of the head, NaN.
// Kernel sets (chosen once per process, like the SIMD paths; lowp_path_name() tells which):
//   "amx"        AMX tiles (tdpbf16ps, tdpbssd); needs the kernel's permission for the tile data
//                state (arch_prctl ARCH_REQ_XCOMP_PERM), asked once; falls back when refused.
//   "avx512bf16" AVX512-BF16 (vdpbf16ps) and AVX512-VNNI (vpdpbusd).
//   "portable"   the same rounding emulated through fp32 (exact bf16 products, int32 integer dots):
//                runs on every CPU, compiled with the flags of the active fp32 SIMD path.
// The fast sets and the portable one round identically; only the fp32 summation order differs.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "attend.hpp"

namespace attnkit::simd {

enum class Precision : int { fp32 = 0, bf16 = 1, int8 = 2 };

// "fp32" | "bf16" | "int8".
const char* to_string(Precision p);

// Keys per key tile of the packed layouts (and per int8 key scale).
inline constexpr int64_t kKeyTile = 32;

// K and V of one kv head, converted once per forward call (O(n_k · (d + d_v)) work and bytes) into
// the layouts every lowp kernel set reads. Read-only after pack(): share one per kv head between
// threads. Not copyable (large); movable.
class LowpKV {
 public:
  LowpKV() = default;
  LowpKV(LowpKV&&) noexcept = default;
  LowpKV& operator=(LowpKV&&) noexcept = default;
  LowpKV(const LowpKV&) = delete;
  LowpKV& operator=(const LowpKV&) = delete;

  // k: n_k rows of d floats, row stride k_stride; v: n_k rows of d_v floats, row stride v_stride.
  // p must be bf16 or int8. Throws attnkit::Error on p == fp32 or non-positive sizes.
  void pack(Precision p, const float* k, int64_t k_stride, const float* v, int64_t v_stride, int64_t n_k, int64_t d,
            int64_t d_v);

  Precision precision() const { return prec_; }
  int64_t n_k() const { return n_k_; }
  int64_t d() const { return d_; }
  int64_t d_v() const { return d_v_; }
  // Bytes held (for memory accounting).
  int64_t bytes() const;

  // Layout, for the kernels (tiles = ceil(n_k / kKeyTile); keys past n_k are zero):
  //   bf16 keys  kb_[tile][dp/2][kKeyTile][2]   dp = d rounded up to 32 (channel pairs, VNNI order)
  //   int8 keys  k8_[tile][dp/4][kKeyTile][4]   dp = d rounded up to 64 (channel quads)
  //              kscale_[tile], ksum_[tile * kKeyTile + j] = Σ_c k8[j][c] (for u8·s8 dot products)
  //   values     vb_[n_k rounded up to kKeyTile, in pairs][dvp][2] bf16, dvp = d_v rounded up to 16
  Precision prec_ = Precision::bf16;
  int64_t n_k_ = 0, d_ = 0, d_v_ = 0, dp_ = 0, dvp_ = 0, tiles_ = 0;
  std::vector<uint16_t> kb_;
  std::vector<int8_t> k8_;
  std::vector<float> kscale_;
  std::vector<int32_t> ksum_;
  std::vector<uint16_t> vb_;
};

// Like attend(): out[r] = softmax over the visible keys in `spans` (ascending, disjoint) of
// a.scale · q_r·k_j, applied to v, with the products in kv.precision() (see above). a.k and a.v are
// not read (kv holds them); a.d and a.d_v must equal kv.d() and kv.d_v(); a.row_max / a.row_sum are
// written when non-null as by attend(), except that the shift m is the running max only up to a
// slack: it moves when a tile's max exceeds it by more than 8, which saves most accumulator
// rescales; log-sum-exp = m + log(row_sum) holds all the same. Rows that see no key get zeros. No threads of its own: call
// it from inside the caller's OpenMP region, one Workspace per thread; call lowp_path_name() once
// before that region so that a bad ATTNKIT_SIMD value throws there. Throws attnkit::Error (outside a
// parallel region only) on mismatched sizes.
void attend_lowp(const AttendArgs& a, const LowpKV& kv, std::span<const KeySpan> spans, const TileMask* mask,
                 Workspace& ws);

// The kernel set attend_lowp runs on in this process: "amx", "avx512bf16" or "portable". Decided by
// ATTNKIT_SIMD (see dispatch.cpp) and the CPU; throws attnkit::Error like active_path().
const char* lowp_path_name();

// For tests: the kernel sets this build has that this CPU (and kernel) can run, fastest first
// ("portable" always last), and attend_lowp on a named one. Throws attnkit::Error when `name` is
// not runnable here.
std::vector<std::string> lowp_paths_runnable();
void attend_lowp_on(const std::string& name, const AttendArgs& a, const LowpKV& kv, std::span<const KeySpan> spans,
                    const TileMask* mask, Workspace& ws);

}  // namespace attnkit::simd
