// attnkit mha: one multi-head attention layer on .npy inputs, native or PyTorch weight layout.
#include <omp.h>

#include <cstdio>
#include <sstream>
#include <string>

#include "args.hpp"
#include "attnkit/error.hpp"
#include "attnkit/limits.hpp"
#include "attnkit/mha.hpp"
#include "attnkit/npy.hpp"
#include "attnkit/registry.hpp"
#include "commands.hpp"

namespace attnkit::cli {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

NpyArray load_f32(const std::string& flag, const std::string& path) {
  NpyArray a = read_npy(path);
  if (a.dtype != NpyArray::DType::Float32) detail::fail(flag, " ", path, ": dtype int32; expected float32");
  return a;
}

// A [B, n, d_model] (rank 3) or [n, d_model] (rank 2, B = 1) activation file.
struct Seq {
  NpyArray a;
  int64_t batch = 1, seq = 0, width = 0;
  int rank = 0;
};
Seq load_seq(const std::string& flag, const std::string& path) {
  Seq s{load_f32(flag, path)};
  const auto& sh = s.a.shape;
  s.rank = static_cast<int>(sh.size());
  if (s.rank != 2 && s.rank != 3)
    detail::fail(flag, " ", path, ": shape ", shape_str(sh), "; expected [batch, seq, d_model] or [seq, d_model]");
  if (s.rank == 3) s.batch = sh[0];
  s.seq = sh[sh.size() - 2];
  s.width = sh.back();
  if (s.batch < 1 || s.seq < 1 || s.width < 1)
    detail::fail(flag, " ", path, ": shape ", shape_str(sh), "; expected every dimension >= 1");
  return s;
}

// A weight matrix of `rows` x `cols` (0 = any; `what` explains the expected shape).
NpyArray load_matrix(const std::string& flag, const std::string& path, int64_t rows, int64_t cols,
                     const std::string& what) {
  NpyArray a = load_f32(flag, path);
  if (a.shape.size() != 2 || (rows && a.shape[0] != rows) || (cols && a.shape[1] != cols) || a.shape[0] < 1 ||
      a.shape[1] < 1)
    detail::fail(flag, " ", path, ": shape ", shape_str(a.shape), "; expected ", what);
  return a;
}

std::vector<float> load_bias(const Args& args, const std::string& flag, int64_t len, const std::string& what) {
  if (!args.has(flag)) return {};
  const std::string path = args.str(flag);
  NpyArray a = load_f32(flag, path);
  if (a.shape.size() != 1 || a.shape[0] != len)
    detail::fail(flag, " ", path, ": shape ", shape_str(a.shape), "; expected [", len, "] (", what, ")");
  return std::move(a.f32);
}

// Text of the parts, for messages (an ostringstream: GCC 12 warns falsely on "lit" + std::string).
template <class... P>
std::string cat(const P&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}
std::string dims(int64_t a, int64_t b) { return cat("[", a, ", ", b, "]"); }

}  // namespace

int cmd_mha(const std::vector<std::string>& argv) {
  Args args(argv,
            {"--x", "--context", "--heads", "--kv-heads", "--wq", "--wk", "--wv", "--wo", "--bq", "--bk", "--bv", "--bo",
             "--in-proj", "--in-proj-bias", "--out-proj", "--out-proj-bias", "--backend", "--key-lengths", "--out",
             "--threads"},
            {"--causal"});
  const Seq x = load_seq("--x", args.str("--x"));
  const int64_t D = x.width;
  const bool cross = args.has("--context");
  Seq c;
  if (cross) {
    c = load_seq("--context", args.str("--context"));
    if (c.width != D) detail::fail("--context ", args.str("--context"), ": d_model ", c.width, "; expected ", D, " like --x");
    if (c.batch != x.batch) detail::fail("--context ", args.str("--context"), ": batch ", c.batch, "; expected ", x.batch, " like --x");
  }
  const std::string out_path = args.str("--out");
  if (!args.has("--heads")) detail::fail("--heads: required");
  const int64_t H = args.integer("--heads", 0, 1, 1 << 20);
  const int64_t threads = args.integer("--threads", 0, 0, kMaxThreads);
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));

  MhaConfig cfg;
  cfg.d_model = D;
  cfg.heads = H;
  MhaWeights w;
  const bool torch = args.has("--in-proj");
  if (torch) {
    for (const char* f : {"--wq", "--wk", "--wv", "--wo", "--bq", "--bk", "--bv", "--bo", "--kv-heads"})
      if (args.has(f))
        detail::fail(f, ": cannot be mixed with --in-proj (PyTorch layout); expected --in-proj, --in-proj-bias, "
                        "--out-proj, --out-proj-bias only");
    if (D % H != 0) detail::fail("--heads ", H, ": does not divide d_model = ", D, "; expected a divisor (PyTorch layout)");
    TorchMhaWeights t;
    t.in_proj_weight = load_matrix("--in-proj", args.str("--in-proj"), 3 * D, D,
                                   dims(3 * D, D) + " (in_proj_weight: [3·d_model, d_model], rows W_q; W_k; W_v)").f32;
    if (!args.has("--out-proj")) detail::fail("--out-proj: required with --in-proj (out_proj.weight, [d_model, d_model])");
    t.out_proj_weight = load_matrix("--out-proj", args.str("--out-proj"), D, D,
                                    dims(D, D) + " (out_proj.weight, PyTorch's out x in layout)").f32;
    t.in_proj_bias = load_bias(args, "--in-proj-bias", 3 * D, "in_proj_bias, 3·d_model");
    t.out_proj_bias = load_bias(args, "--out-proj-bias", D, "out_proj.bias, d_model");
    w = MultiHeadAttention::native_from_torch(D, H, t);
  } else {
    for (const char* f : {"--in-proj-bias", "--out-proj", "--out-proj-bias"})
      if (args.has(f)) detail::fail(f, ": PyTorch layout needs --in-proj; expected it, or the native --wq/--wk/--wv/--wo");
    const int64_t G = args.integer("--kv-heads", H, 1, H);
    if (H % G != 0) detail::fail("--kv-heads ", G, ": does not divide --heads ", H, "; expected a divisor");
    const NpyArray wq = load_matrix("--wq", args.str("--wq"), D, 0, cat("[d_model, heads·d] = [", D, ", ", H, "·d]"));
    if (wq.shape[1] % H != 0)
      detail::fail("--wq ", args.str("--wq"), ": shape ", shape_str(wq.shape), "; expected [", D, ", ", H,
                   "·d] (columns a multiple of --heads ", H, ")");
    const int64_t d = wq.shape[1] / H;
    const NpyArray wk = load_matrix("--wk", args.str("--wk"), D, G * d, dims(D, G * d) + " = [d_model, kv_heads·d]");
    const NpyArray wv = load_matrix("--wv", args.str("--wv"), D, 0, cat("[d_model, kv_heads·d_v] = [", D, ", ", G, "·d_v]"));
    if (wv.shape[1] % G != 0)
      detail::fail("--wv ", args.str("--wv"), ": shape ", shape_str(wv.shape), "; expected [", D, ", ", G,
                   "·d_v] (columns a multiple of --kv-heads ", G, ")");
    const int64_t dv = wv.shape[1] / G;
    const NpyArray wo = load_matrix("--wo", args.str("--wo"), H * dv, D, dims(H * dv, D) + " = [heads·d_v, d_model]");
    cfg.kv_heads = G;
    cfg.head_dim = d;
    cfg.head_dim_v = dv;
    w.wq = wq.f32;
    w.wk = wk.f32;
    w.wv = wv.f32;
    w.wo = wo.f32;
    w.bq = load_bias(args, "--bq", H * d, "heads·d");
    w.bk = load_bias(args, "--bk", G * d, "kv_heads·d");
    w.bv = load_bias(args, "--bv", G * dv, "kv_heads·d_v");
    w.bo = load_bias(args, "--bo", D, "d_model");
  }
  const MultiHeadAttention mha(cfg, w, args.str("--backend", "exact"));

  Mask mask;
  mask.causal = args.has("--causal");
  if (args.has("--key-lengths")) mask.key_lengths = load_key_lengths(args.str("--key-lengths"), x.batch);
  std::vector<float> y(static_cast<size_t>(x.batch * x.seq * D));
  const ConstSeq xs{x.a.f32.data(), x.batch, x.seq, D};
  const MutSeq ys{y.data(), x.batch, x.seq, D};
  if (cross)
    mha.forward(xs, ConstSeq{c.a.f32.data(), c.batch, c.seq, D}, ys, mask);
  else
    mha.forward(xs, ys, mask);
  if (x.rank == 3)
    write_npy(out_path, y.data(), {x.batch, x.seq, D});
  else
    write_npy(out_path, y.data(), {x.seq, D});
  const MhaConfig& r = mha.config();
  std::printf("mha       %s, backend %s, %s layout\n", cross ? "cross-attention" : "self-attention",
              mha.backend().spec().c_str(), torch ? "PyTorch" : "native");
  std::printf("shape     x [%lld, %lld, %lld]%s  heads %lld  kv_heads %lld  d %lld  d_v %lld%s%s\n",
              (long long)x.batch, (long long)x.seq, (long long)D,
              cross ? cat("  context seq ", c.seq).c_str() : "", (long long)r.heads,
              (long long)r.kv_heads, (long long)r.head_dim, (long long)r.head_dim_v, mask.causal ? "  causal" : "",
              mask.key_lengths.empty() ? "" : "  key_lengths");
  std::printf("wrote     %s\n", out_path.c_str());
  return 0;
}

}  // namespace attnkit::cli
