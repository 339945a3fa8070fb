#pragma once
// 4-D float32 views with element strides, and the owning aligned Tensor.
//
// Axes are always [batch, heads, seq, dim]. A view never owns memory. Strides are in elements and
// may be anything non-negative on the first three axes, so both [B,H,N,D] storage and [B,N,H,D]
// storage (what a projection produces) are expressed without copies. The last axis must be
// contiguous (stride 1): the kernels load rows with SIMD.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace attnkit {

template <class T>
struct View {
  T* data = nullptr;
  std::array<int64_t, 4> shape{0, 0, 0, 0};   // batch, heads, seq, dim
  std::array<int64_t, 4> stride{0, 0, 0, 1};  // elements

  int64_t batch() const { return shape[0]; }
  int64_t heads() const { return shape[1]; }
  int64_t seq() const { return shape[2]; }
  int64_t dim() const { return shape[3]; }
  int64_t numel() const { return shape[0] * shape[1] * shape[2] * shape[3]; }

  // Pointer to row (b, h, i): dim() contiguous elements.
  T* row(int64_t b, int64_t h, int64_t i) const {
    return data + b * stride[0] + h * stride[1] + i * stride[2];
  }
  T& at(int64_t b, int64_t h, int64_t i, int64_t c) const { return row(b, h, i)[c]; }
  operator View<const T>() const { return View<const T>{data, shape, stride}; }

  // Dense [B,H,N,D] (C order) view over `p`.
  static View bhnd(T* p, int64_t b, int64_t h, int64_t n, int64_t d) {
    return View{p, {b, h, n, d}, {h * n * d, n * d, d, 1}};
  }
  // Dense [B,N,H,D] (C order) storage seen as [B,H,N,D], e.g. a projection's output.
  static View bnhd(T* p, int64_t b, int64_t n, int64_t h, int64_t d) {
    return View{p, {b, h, n, d}, {n * h * d, d, h * d, 1}};
  }
};

using ConstView = View<const float>;
using MutView = View<float>;

// Owning, 64-byte-aligned, dense [B,H,N,D] float32 storage. Movable, not copyable (use clone()).
// Not thread-safe for concurrent writes; concurrent reads are fine.
class Tensor {
 public:
  Tensor() = default;
  // Zero-filled. Throws attnkit::Error for a negative dimension or a size that overflows.
  Tensor(int64_t b, int64_t h, int64_t n, int64_t d);
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;

  Tensor clone() const;
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  const std::array<int64_t, 4>& shape() const { return shape_; }
  int64_t numel() const { return shape_[0] * shape_[1] * shape_[2] * shape_[3]; }
  MutView view() { return MutView::bhnd(data(), shape_[0], shape_[1], shape_[2], shape_[3]); }
  ConstView view() const { return ConstView::bhnd(data(), shape_[0], shape_[1], shape_[2], shape_[3]); }
  ConstView cview() const { return view(); }

 private:
  struct Free {
    void operator()(float* p) const;
  };
  std::unique_ptr<float[], Free> data_;
  std::array<int64_t, 4> shape_{0, 0, 0, 0};
};

// 64-byte-aligned zeroed float buffer of `n` elements (scratch for kernels). Throws on overflow.
std::unique_ptr<float[], void (*)(float*)> aligned_floats(std::size_t n);

}  // namespace attnkit
