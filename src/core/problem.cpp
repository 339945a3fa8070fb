#include "attnkit/problem.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "attnkit/error.hpp"

namespace attnkit {

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// Validates one view; returns [lowest, highest] element offset it touches (highest exclusive).
template <class T>
void check_view(const char* name, const View<T>& v, std::pair<const void*, const void*>* range) {
  static const char* axis[4] = {"batch", "heads", "seq", "dim"};
  for (int a = 0; a < 4; ++a) {
    if (v.shape[a] < 1)
      detail::fail(name, ": ", axis[a], " size is ", v.shape[a], "; expected >= 1");
    if (v.stride[a] < 0)
      detail::fail(name, ": ", axis[a], " stride is ", v.stride[a], "; expected >= 0");
  }
  if (v.stride[3] != 1)
    detail::fail(name, ": dim stride is ", v.stride[3], "; expected 1 (rows must be contiguous)");
  if (v.data == nullptr) detail::fail(name, ": data is null; expected a pointer to the elements");
  int64_t last = 0;
  for (int a = 0; a < 4; ++a) {
    const int64_t ext = v.shape[a] - 1;
    if (v.stride[a] != 0 && ext > (kMax / 8 - last) / v.stride[a])
      detail::fail(name, ": shape x strides overflow a 64-bit element offset");
    last += ext * v.stride[a];
  }
  // Views with a zero stride on any axis but dim would alias rows; allowed for inputs only.
  range->first = v.data;
  range->second = v.data + last + 1;
}

// True when no two elements of v share memory, by the nesting rule: the axes of size > 1, taken
// by increasing stride, each step past everything the smaller ones span. Every dense layout and
// permutation of one ([B,H,N,D], [B,N,H,D], transposes, slices) passes; exotic interleavings that
// happen not to collide are refused too, which costs an output copy at worst.
bool distinct_elements(const MutView& v) {
  int axes[4];
  int n = 0;
  for (int a = 0; a < 4; ++a)
    if (v.shape[a] > 1) axes[n++] = a;
  for (int i = 1; i < n; ++i)  // insertion sort by stride
    for (int j = i; j > 0 && v.stride[axes[j]] < v.stride[axes[j - 1]]; --j) std::swap(axes[j], axes[j - 1]);
  int64_t span = 1;  // elements [0, span) cover what the smaller axes reach
  for (int i = 0; i < n; ++i) {
    const int a = axes[i];
    if (v.stride[a] < span) return false;
    span = v.stride[a] * (v.shape[a] - 1) + span;
  }
  return true;
}

bool overlaps(std::pair<const void*, const void*> a, std::pair<const void*, const void*> b) {
  return a.first < b.second && b.first < a.second;
}

}  // namespace

Shape Problem::dims() const {
  return Shape{q.shape[0], q.shape[1], k.shape[1], q.shape[2], k.shape[2], q.shape[3], v.shape[3], mask.causal};
}

float Problem::effective_scale() const {
  return scale ? *scale : 1.0f / std::sqrt(static_cast<float>(q.shape[3]));
}

Shape Problem::validate() const {
  std::pair<const void*, const void*> rq, rk, rv, ro;
  check_view("q", q, &rq);
  check_view("k", k, &rk);
  check_view("v", v, &rv);
  check_view("out", out, &ro);
  const Shape d = dims();
  if (k.shape[0] != d.batch) detail::fail("k: batch is ", k.shape[0], "; expected ", d.batch, " (q's batch)");
  if (v.shape[0] != d.batch) detail::fail("v: batch is ", v.shape[0], "; expected ", d.batch, " (q's batch)");
  if (out.shape[0] != d.batch) detail::fail("out: batch is ", out.shape[0], "; expected ", d.batch, " (q's batch)");
  if (v.shape[1] != d.kv_heads) detail::fail("v: heads is ", v.shape[1], "; expected ", d.kv_heads, " (k's heads)");
  if (d.heads % d.kv_heads != 0)
    detail::fail("k: heads is ", d.kv_heads, "; expected a divisor of q's heads ", d.heads);
  if (out.shape[1] != d.heads) detail::fail("out: heads is ", out.shape[1], "; expected ", d.heads, " (q's heads)");
  if (k.shape[3] != d.d) detail::fail("k: dim is ", k.shape[3], "; expected ", d.d, " (q's dim)");
  if (v.shape[2] != d.n_k) detail::fail("v: seq is ", v.shape[2], "; expected ", d.n_k, " (k's seq)");
  if (out.shape[2] != d.n_q) detail::fail("out: seq is ", out.shape[2], "; expected ", d.n_q, " (q's seq)");
  if (out.shape[3] != d.d_v) detail::fail("out: dim is ", out.shape[3], "; expected ", d.d_v, " (v's dim)");
  if (!distinct_elements(out))
    detail::fail("out: shape [", out.shape[0], ", ", out.shape[1], ", ", out.shape[2], ", ", out.shape[3], "] with strides [",
                 out.stride[0], ", ", out.stride[1], ", ", out.stride[2], ", ", out.stride[3],
                 "] makes elements overlap; expected every output element at its own address");
  if (overlaps(ro, rq)) detail::fail("out: overlaps q; expected a separate output buffer");
  if (overlaps(ro, rk)) detail::fail("out: overlaps k; expected a separate output buffer");
  if (overlaps(ro, rv)) detail::fail("out: overlaps v; expected a separate output buffer");
  if (scale && !(std::isfinite(*scale) && *scale > 0))
    detail::fail("scale: ", *scale, "; expected a finite value > 0");
  if (!mask.key_lengths.empty()) {
    if (static_cast<int64_t>(mask.key_lengths.size()) != d.batch)
      detail::fail("key_lengths: ", mask.key_lengths.size(), " entries; expected ", d.batch, " (one per batch)");
    for (size_t b = 0; b < mask.key_lengths.size(); ++b) {
      const int32_t L = mask.key_lengths[b];
      if (L < 0 || L > d.n_k)
        detail::fail("key_lengths[", b, "]: ", L, "; expected a value in [0, ", d.n_k, "]");
    }
  }
  return d;
}

}  // namespace attnkit
