// Multi-head attention layer: projections by sgemm, heads as strided views, any backend between.
#include "attnkit/mha.hpp"

#include <climits>
#include <cmath>
#include <string>

#include "attnkit/error.hpp"
#include "attnkit/registry.hpp"
#include "linear.hpp"

namespace attnkit {

namespace {

void check_len(const char* what, const std::vector<float>& v, int64_t expected, bool optional) {
  if (optional && v.empty()) return;
  if (static_cast<int64_t>(v.size()) != expected)
    detail::fail("mha: ", what, " has ", v.size(), " elements; expected ", expected, optional ? " (or none)" : "");
}

// Every size an sgemm sees must fit blasint (32-bit in Debian's OpenBLAS).
void check_blas(const char* what, int64_t v) {
  if (v > INT_MAX) detail::fail("mha: ", what, " = ", v, "; expected at most ", INT_MAX, " (32-bit BLAS)");
}

void check_seq(const char* name, ConstSeq s, int64_t width) {
  if (!s.data) detail::fail(name, ": null data; expected a [batch, seq, ", width, "] array");
  if (s.batch < 1 || s.seq < 1)
    detail::fail(name, ": shape [", s.batch, ", ", s.seq, ", ", s.width, "]; expected batch and seq >= 1");
  if (s.width != width) detail::fail(name, ": width ", s.width, "; expected d_model = ", width);
  if (s.batch > INT64_MAX / s.seq) detail::fail(name, ": batch x seq overflows");
}

// An owning row-major float matrix with a [B,H,N,D] view over column blocks of it.
struct Buffer {
  std::unique_ptr<float[], void (*)(float*)> data{nullptr, nullptr};
  int64_t rows = 0, cols = 0;
  Buffer(int64_t r, int64_t c) : data(aligned_floats(static_cast<size_t>(r) * static_cast<size_t>(c))), rows(r), cols(c) {}
  // Columns [col0, col0 + heads·dim) of rows [b·seq + i] seen as [batch, heads, seq, dim].
  MutView heads(int64_t col0, int64_t batch, int64_t seq, int64_t heads, int64_t dim) const {
    return MutView{data.get() + col0, {batch, heads, seq, dim}, {seq * cols, dim, cols, 1}};
  }
};

}  // namespace

struct MultiHeadAttention::Activations {
  Buffer q;   // [B·n, H·d], or [B·n, H·d + H_kv·(d + d_v)] when K and V share it (self-attention)
  Buffer kv;  // [B·m, H_kv·(d + d_v)] for cross-attention; empty otherwise
  Buffer o;   // [B·n, H·d_v]: the backend's output, heads side by side
  Problem p;
};

MultiHeadAttention::MultiHeadAttention(const MhaConfig& cfg, const MhaWeights& w,
                                       std::shared_ptr<const Backend> backend)
    : cfg_(cfg), backend_(std::move(backend)) {
  if (!backend_) detail::fail("mha: backend is null; expected a backend object");
  if (cfg_.d_model < 1) detail::fail("mha: d_model = ", cfg_.d_model, "; expected >= 1");
  if (cfg_.heads < 1) detail::fail("mha: heads = ", cfg_.heads, "; expected >= 1");
  if (cfg_.kv_heads == 0) cfg_.kv_heads = cfg_.heads;
  if (cfg_.kv_heads < 1 || cfg_.heads % cfg_.kv_heads != 0)
    detail::fail("mha: kv_heads = ", cfg_.kv_heads, "; expected a divisor of heads = ", cfg_.heads);
  if (cfg_.head_dim == 0) {
    if (cfg_.d_model % cfg_.heads != 0)
      detail::fail("mha: d_model = ", cfg_.d_model, " is not divisible by heads = ", cfg_.heads,
                   "; expected a multiple, or an explicit head_dim");
    cfg_.head_dim = cfg_.d_model / cfg_.heads;
  }
  if (cfg_.head_dim < 1) detail::fail("mha: head_dim = ", cfg_.head_dim, "; expected >= 1");
  if (cfg_.head_dim_v == 0) cfg_.head_dim_v = cfg_.head_dim;
  if (cfg_.head_dim_v < 1) detail::fail("mha: head_dim_v = ", cfg_.head_dim_v, "; expected >= 1");
  if (cfg_.scale && !(std::isfinite(*cfg_.scale) && *cfg_.scale > 0))
    detail::fail("mha: scale = ", *cfg_.scale, "; expected a finite value > 0");
  const int64_t D = cfg_.d_model, H = cfg_.heads, G = cfg_.kv_heads, d = cfg_.head_dim, dv = cfg_.head_dim_v;
  for (int64_t x : {D, H, G, d, dv}) check_blas("a layer dimension", x);
  wq_cols_ = H * d;
  wk_cols_ = G * d;
  wv_cols_ = G * dv;
  const int64_t wide = wq_cols_ + wk_cols_ + wv_cols_;
  check_blas("H·d + H_kv·(d + d_v)", wide);
  check_len("W_Q [d_model, H·d]", w.wq, D * wq_cols_, false);
  check_len("W_K [d_model, H_kv·d]", w.wk, D * wk_cols_, false);
  check_len("W_V [d_model, H_kv·d_v]", w.wv, D * wv_cols_, false);
  check_len("W_O [H·d_v, d_model]", w.wo, H * dv * D, false);
  check_len("b_Q [H·d]", w.bq, wq_cols_, true);
  check_len("b_K [H_kv·d]", w.bk, wk_cols_, true);
  check_len("b_V [H_kv·d_v]", w.bv, wv_cols_, true);
  check_len("b_O [d_model]", w.bo, D, true);

  // W_Q | W_K | W_V side by side: one sgemm projects all three for self-attention, and the
  // column blocks (leading dimension `wide`) serve cross-attention's two sgemms.
  w_qkv_.resize(static_cast<size_t>(D * wide));
  for (int64_t r = 0; r < D; ++r) {
    float* row = w_qkv_.data() + r * wide;
    std::copy(w.wq.begin() + r * wq_cols_, w.wq.begin() + (r + 1) * wq_cols_, row);
    std::copy(w.wk.begin() + r * wk_cols_, w.wk.begin() + (r + 1) * wk_cols_, row + wq_cols_);
    std::copy(w.wv.begin() + r * wv_cols_, w.wv.begin() + (r + 1) * wv_cols_, row + wq_cols_ + wk_cols_);
  }
  if (!w.bq.empty() || !w.bk.empty() || !w.bv.empty()) {
    b_qkv_.assign(static_cast<size_t>(wide), 0.0f);  // a missing part is a zero bias
    std::copy(w.bq.begin(), w.bq.end(), b_qkv_.begin());
    std::copy(w.bk.begin(), w.bk.end(), b_qkv_.begin() + wq_cols_);
    std::copy(w.bv.begin(), w.bv.end(), b_qkv_.begin() + wq_cols_ + wk_cols_);
  }
  wo_ = w.wo;
  bo_ = w.bo;
}

MultiHeadAttention::MultiHeadAttention(const MhaConfig& cfg, const MhaWeights& w, std::string_view backend_spec)
    : MultiHeadAttention(cfg, w, std::shared_ptr<const Backend>(make_backend(backend_spec))) {}

MultiHeadAttention MultiHeadAttention::from_torch(int64_t d_model, int64_t heads, const TorchMhaWeights& t,
                                                  std::shared_ptr<const Backend> backend) {
  MhaConfig cfg;
  cfg.d_model = d_model;
  cfg.heads = heads;
  return MultiHeadAttention(cfg, native_from_torch(d_model, heads, t), std::move(backend));
}

MultiHeadAttention MultiHeadAttention::from_torch(int64_t d_model, int64_t heads, const TorchMhaWeights& t,
                                                  std::string_view backend_spec) {
  return from_torch(d_model, heads, t, std::shared_ptr<const Backend>(make_backend(backend_spec)));
}

MultiHeadAttention::Activations MultiHeadAttention::project(ConstSeq x, const ConstSeq* context,
                                                            const Mask& mask) const {
  const int64_t D = cfg_.d_model, H = cfg_.heads, G = cfg_.kv_heads, d = cfg_.head_dim, dv = cfg_.head_dim_v;
  check_seq("x", x, D);
  if (context) {
    check_seq("context", *context, D);
    if (context->batch != x.batch)
      detail::fail("context: batch ", context->batch, "; expected x's batch ", x.batch);
  }
  const int64_t B = x.batch, n = x.seq, m = context ? context->seq : n;
  check_blas("batch x seq", B * n);
  check_blas("batch x context seq", B * m);
  const int64_t wide = wq_cols_ + wk_cols_ + wv_cols_;
  const float* bias = b_qkv_.empty() ? nullptr : b_qkv_.data();

  Activations a{Buffer(B * n, context ? wq_cols_ : wide), Buffer(context ? B * m : 0, wk_cols_ + wv_cols_),
                Buffer(B * n, H * dv), Problem{}};
  if (!context) {
    layer::linear(x.data, D, B * n, D, w_qkv_.data(), wide, wide, bias, a.q.data.get(), wide);
    a.p.q = a.q.heads(0, B, n, H, d);
    a.p.k = a.q.heads(wq_cols_, B, n, G, d);
    a.p.v = a.q.heads(wq_cols_ + wk_cols_, B, n, G, dv);
  } else {
    layer::linear(x.data, D, B * n, D, w_qkv_.data(), wide, wq_cols_, bias, a.q.data.get(), wq_cols_);
    layer::linear(context->data, D, B * m, D, w_qkv_.data() + wq_cols_, wide, wk_cols_ + wv_cols_,
                  bias ? bias + wq_cols_ : nullptr, a.kv.data.get(), wk_cols_ + wv_cols_);
    a.p.q = a.q.heads(0, B, n, H, d);
    a.p.k = a.kv.heads(0, B, m, G, d);
    a.p.v = a.kv.heads(wk_cols_, B, m, G, dv);
  }
  a.p.out = a.o.heads(0, B, n, H, dv);
  a.p.scale = cfg_.scale;
  a.p.mask = mask;
  return a;
}

void MultiHeadAttention::forward(ConstSeq x, MutSeq y, const Mask& mask) const {
  check_seq("x", x, cfg_.d_model);  // the inputs first: a bad x must not be reported as a bad y
  check_seq("y", y, cfg_.d_model);
  if (y.batch != x.batch || y.seq != x.seq)
    detail::fail("y: shape [", y.batch, ", ", y.seq, ", ", y.width, "]; expected [", x.batch, ", ", x.seq, ", ",
                 cfg_.d_model, "]");
  Activations a = project(x, nullptr, mask);
  backend_->forward(a.p);
  const int64_t hdv = cfg_.heads * cfg_.head_dim_v;
  layer::linear(a.o.data.get(), hdv, x.batch * x.seq, hdv, wo_.data(), cfg_.d_model, cfg_.d_model,
                bo_.empty() ? nullptr : bo_.data(), y.data, cfg_.d_model);
}

void MultiHeadAttention::forward(ConstSeq x, ConstSeq context, MutSeq y, const Mask& mask) const {
  check_seq("x", x, cfg_.d_model);  // the inputs first: a bad x must not be reported as a bad y
  check_seq("context", context, cfg_.d_model);
  check_seq("y", y, cfg_.d_model);
  if (y.batch != x.batch || y.seq != x.seq)
    detail::fail("y: shape [", y.batch, ", ", y.seq, ", ", y.width, "]; expected [", x.batch, ", ", x.seq, ", ",
                 cfg_.d_model, "]");
  Activations a = project(x, &context, mask);
  backend_->forward(a.p);
  const int64_t hdv = cfg_.heads * cfg_.head_dim_v;
  layer::linear(a.o.data.get(), hdv, x.batch * x.seq, hdv, wo_.data(), cfg_.d_model, cfg_.d_model,
                bo_.empty() ? nullptr : bo_.data(), y.data, cfg_.d_model);
}

void MultiHeadAttention::weights(ConstSeq x, const Mask& mask, int64_t b, int64_t h, float* w) const {
  if (!w) detail::fail("mha weights: w is null; expected room for n x n floats");
  Activations a = project(x, nullptr, mask);
  backend_->weights(a.p, b, h, w);
}

void MultiHeadAttention::weights(ConstSeq x, ConstSeq context, const Mask& mask, int64_t b, int64_t h,
                                 float* w) const {
  if (!w) detail::fail("mha weights: w is null; expected room for n x m floats");
  Activations a = project(x, &context, mask);
  backend_->weights(a.p, b, h, w);
}

}  // namespace attnkit
