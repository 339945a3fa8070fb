// PyTorch nn.MultiheadAttention state_dict (out x in matrices) -> the native (in x out) layout.
#include "attnkit/error.hpp"
#include "attnkit/mha.hpp"

namespace attnkit {

namespace {
// Rows [row0, row0 + rows) of a row-major [*, cols] matrix, transposed to [cols, rows].
std::vector<float> transposed_block(const std::vector<float>& m, int64_t row0, int64_t rows, int64_t cols) {
  std::vector<float> t(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[static_cast<size_t>(c * rows + r)] = m[static_cast<size_t>((row0 + r) * cols + c)];
  return t;
}
}  // namespace

MhaWeights MultiHeadAttention::native_from_torch(int64_t d_model, int64_t heads, const TorchMhaWeights& t) {
  const int64_t D = d_model;
  if (D < 1) detail::fail("mha: d_model = ", D, "; expected >= 1");
  if (heads < 1 || D % heads != 0)
    detail::fail("mha: heads = ", heads, "; expected a divisor of d_model = ", D, " (PyTorch layout)");
  if (static_cast<int64_t>(t.in_proj_weight.size()) != 3 * D * D)
    detail::fail("mha: in_proj_weight has ", t.in_proj_weight.size(), " elements; expected [3·d_model, d_model] = ",
                 3 * D * D);
  if (!t.in_proj_bias.empty() && static_cast<int64_t>(t.in_proj_bias.size()) != 3 * D)
    detail::fail("mha: in_proj_bias has ", t.in_proj_bias.size(), " elements; expected [3·d_model] = ", 3 * D,
                 " (or none)");
  if (static_cast<int64_t>(t.out_proj_weight.size()) != D * D)
    detail::fail("mha: out_proj.weight has ", t.out_proj_weight.size(), " elements; expected [d_model, d_model] = ",
                 D * D);
  if (!t.out_proj_bias.empty() && static_cast<int64_t>(t.out_proj_bias.size()) != D)
    detail::fail("mha: out_proj.bias has ", t.out_proj_bias.size(), " elements; expected [d_model] = ", D,
                 " (or none)");
  MhaWeights w;
  w.wq = transposed_block(t.in_proj_weight, 0, D, D);
  w.wk = transposed_block(t.in_proj_weight, D, D, D);
  w.wv = transposed_block(t.in_proj_weight, 2 * D, D, D);
  w.wo = transposed_block(t.out_proj_weight, 0, D, D);
  if (!t.in_proj_bias.empty()) {
    w.bq.assign(t.in_proj_bias.begin(), t.in_proj_bias.begin() + D);
    w.bk.assign(t.in_proj_bias.begin() + D, t.in_proj_bias.begin() + 2 * D);
    w.bv.assign(t.in_proj_bias.begin() + 2 * D, t.in_proj_bias.end());
  }
  w.bo = t.out_proj_bias;
  return w;
}

}  // namespace attnkit
