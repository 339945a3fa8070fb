// The entry points of the element-wise (elementwise.hpp) and Hamming (hamming.hpp) kernels: each
// forwards to the SIMD path chosen once for this process (dispatch.cpp), like attend().
#include "elementwise.hpp"
#include "hamming.hpp"
#include "paths.hpp"

namespace attnkit::simd {

float add_and_max(float* p, int64_t n, float off) { return active_path().add_and_max(p, n, off); }
float max_of(const float* p, int64_t n) { return active_path().max_of(p, n); }
void exp_shift(float* p, int64_t n, float c) { active_path().exp_shift(p, n, c); }
void elu_plus_one(float* p, int64_t n) { active_path().elu_plus_one(p, n); }

int64_t assign_nearest(const uint64_t* codes, int64_t n, const uint64_t* centres, int64_t count, int32_t* label) {
  return active_path().assign_nearest(codes, n, centres, count, label);
}
void count_bits(const uint64_t* codes, int64_t n, const int32_t* label, int bits, uint32_t* counts, uint32_t* sizes) {
  active_path().count_bits(codes, n, label, bits, counts, sizes);
}
void make_codes(const float* proj, int64_t n, const float* thr, uint64_t* codes) {
  active_path().make_codes(proj, n, thr, codes);
}

}  // namespace attnkit::simd
