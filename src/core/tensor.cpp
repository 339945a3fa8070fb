#include "attnkit/tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <limits>

#include "attnkit/error.hpp"

namespace attnkit {

namespace {
float* alloc_aligned(std::size_t n) {
  if (n > std::numeric_limits<std::size_t>::max() / sizeof(float) - 64)
    detail::fail("tensor size: ", n, " floats overflows; expected a size that fits in memory");
  std::size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
  if (bytes == 0) bytes = 64;
  void* p = std::aligned_alloc(64, bytes);
  if (!p) detail::fail("tensor size: could not allocate ", bytes, " bytes");
  std::memset(p, 0, bytes);
  return static_cast<float*>(p);
}
}  // namespace

void Tensor::Free::operator()(float* p) const { std::free(p); }

Tensor::Tensor(int64_t b, int64_t h, int64_t n, int64_t d) : shape_{b, h, n, d} {
  int64_t total = 1;
  for (int64_t x : shape_) {
    if (x < 0) detail::fail("tensor shape: dimension ", x, " is negative; expected >= 0");
    if (x != 0 && total > std::numeric_limits<int64_t>::max() / 4 / x)
      detail::fail("tensor shape: ", b, "x", h, "x", n, "x", d, " overflows; expected fewer elements");
    total *= x;
  }
  data_.reset(alloc_aligned(static_cast<std::size_t>(total)));
}

Tensor Tensor::clone() const {
  Tensor t(shape_[0], shape_[1], shape_[2], shape_[3]);
  if (numel() > 0) std::memcpy(t.data(), data(), static_cast<std::size_t>(numel()) * sizeof(float));
  return t;
}

std::unique_ptr<float[], void (*)(float*)> aligned_floats(std::size_t n) {
  return {alloc_aligned(n), [](float* p) { std::free(p); }};
}

}  // namespace attnkit
