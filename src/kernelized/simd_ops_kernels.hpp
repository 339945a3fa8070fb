#pragma once
// Internal: functors whose operator() is instantiated once per architecture in simd_ops_arch.cpp
// (compiled with that architecture's flags) and dispatched in simd_ops.cpp.
#include <cstdint>

namespace attnkit::kern::ops {

struct AddMax {
  template <class A>
  float operator()(A, float* p, int64_t n, float off) const;
};
struct MaxOf {
  template <class A>
  float operator()(A, const float* p, int64_t n) const;
};
struct ExpShift {
  template <class A>
  void operator()(A, float* p, int64_t n, float c) const;
};
struct EluPlusOne {
  template <class A>
  void operator()(A, float* p, int64_t n) const;
};

}  // namespace attnkit::kern::ops
