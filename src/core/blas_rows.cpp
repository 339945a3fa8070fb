#include "blas_rows.hpp"

namespace attnkit {

namespace {

template <class V>
bool one_row_stride(V& v) {
  if (v.shape[2] != 1 || v.stride[2] >= v.shape[3]) return false;
  v.stride[2] = v.shape[3];
  return true;
}

// A dense copy of v in t when its rows overlap (row stride < row length on an axis of > 1 rows).
void densify(ConstView& v, Tensor& t) {
  if (v.shape[2] <= 1 || v.stride[2] >= v.shape[3]) return;
  t = Tensor(v.shape[0], v.shape[1], v.shape[2], v.shape[3]);
  MutView dst = t.view();
  for (int64_t b = 0; b < v.shape[0]; ++b)
    for (int64_t h = 0; h < v.shape[1]; ++h)
      for (int64_t i = 0; i < v.shape[2]; ++i) {
        const float* s = v.row(b, h, i);
        float* d = dst.row(b, h, i);
        for (int64_t c = 0; c < v.shape[3]; ++c) d[c] = s[c];
      }
  v = t.cview();
}

}  // namespace

BlasRows::BlasRows(const Problem& p) : p_(p) {
  p.validate();
  one_row_stride(p_.q);
  one_row_stride(p_.k);
  one_row_stride(p_.v);
  one_row_stride(p_.out);
  densify(p_.q, q_);
  densify(p_.k, k_);
  densify(p_.v, v_);
}

}  // namespace attnkit
