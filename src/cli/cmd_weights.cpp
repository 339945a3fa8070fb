// attnkit weights: one head's probability matrix as .npy and, optionally, a heatmap PNG; with
// --compare, a second backend's matrix beside it and their difference.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "args.hpp"
#include "attnkit/backend.hpp"
#include "attnkit/error.hpp"
#include "attnkit/npy.hpp"
#include "attnkit/registry.hpp"
#include "commands.hpp"
#include "heatmap.hpp"

namespace attnkit::cli {

namespace {

std::vector<std::string> read_tokens(const std::string& path, int64_t n_k) {
  std::ifstream in(path);
  if (!in) detail::fail("--tokens ", path, ": cannot open");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  if (static_cast<int64_t>(lines.size()) != n_k)
    detail::fail("--tokens ", path, ": ", lines.size(), " lines; expected one token per key position, n_k = ", n_k);
  return lines;
}

// "W.npy" -> "W.compare.npy"; any other name gets ".compare.npy" appended.
std::string compare_path(const std::string& out) {
  const std::string ext = ".npy";
  const bool npy = out.size() > ext.size() && out.compare(out.size() - ext.size(), ext.size(), ext) == 0;
  return (npy ? out.substr(0, out.size() - ext.size()) : out) + ".compare.npy";
}

}  // namespace

int cmd_weights(const std::vector<std::string>& argv) {
  Args args(argv, {"--q", "--k", "--head", "--batch", "--backend", "--out", "--png", "--tokens", "--compare",
                   "--key-lengths", "--scale"},
            {"--causal", "--log"});
  const std::string out_path = args.str("--out");
  Tensor q = load_tensor("--q", args.str("--q"));
  Tensor k = load_tensor("--k", args.str("--k"));
  // weights() never reads V; a zero V of K's shape makes the Problem complete.
  Tensor v(k.shape()[0], k.shape()[1], k.shape()[2], k.shape()[3]);
  Tensor out(q.shape()[0], q.shape()[1], q.shape()[2], k.shape()[3]);
  Problem p;
  p.q = q.view();
  p.k = k.view();
  p.v = v.view();
  p.out = out.view();
  p.scale = load_scale(args);
  p.mask.causal = args.has("--causal");
  if (args.has("--key-lengths")) p.mask.key_lengths = load_key_lengths(args.str("--key-lengths"), q.shape()[0]);
  const Shape d = p.validate();
  const int64_t b = args.integer("--batch", 0, 0, d.batch - 1);
  const int64_t h = args.integer("--head", 0, 0, d.heads - 1);
  if (d.n_q * d.n_k > Backend::kMaxWeights)
    detail::fail("--q/--k: n_q x n_k = ", d.n_q, " x ", d.n_k, " = ", d.n_q * d.n_k,
                 " weights; expected at most Backend::kMaxWeights = ", Backend::kMaxWeights, " (8192 x 8192)");
  const bool png = args.has("--png");
  if (png && (d.n_q > kMaxPngSide || d.n_k > kMaxPngSide))
    detail::fail("--png: n_q x n_k = ", d.n_q, " x ", d.n_k, "; expected both at most ", kMaxPngSide,
                 " for a heatmap (slice the inputs, or drop --png for the .npy alone)");
  if (args.has("--tokens") && !png) detail::fail("--tokens: only labels a heatmap; expected --png with it");
  if (args.has("--log") && !png) detail::fail("--log: only sets a heatmap's colour scale; expected --png with it");
  if (args.has("--tokens")) read_tokens(args.str("--tokens"), d.n_k);  // check before any work

  const auto base = make_backend(args.str("--backend", "exact"));
  const auto other = args.has("--compare") ? make_backend(args.str("--compare")) : nullptr;
  std::vector<float> w(static_cast<size_t>(d.n_q * d.n_k));
  base->weights(p, b, h, w.data());
  write_npy(out_path, w.data(), {d.n_q, d.n_k});
  std::printf("weights   %s  batch %lld head %lld  [%lld x %lld]%s\n", base->spec().c_str(), (long long)b,
              (long long)h, (long long)d.n_q, (long long)d.n_k, p.mask.causal ? "  causal" : "");
  std::printf("wrote     %s\n", out_path.c_str());

  std::string cmp_file;
  if (other) {
    std::vector<float> w2(w.size());
    other->weights(p, b, h, w2.data());
    cmp_file = compare_path(out_path);
    write_npy(cmp_file, w2.data(), {d.n_q, d.n_k});
    double l1 = 0, mx = 0;
    for (int64_t i = 0; i < d.n_q; ++i)
      for (int64_t j = 0; j < d.n_k; ++j) {
        const double e = std::abs(static_cast<double>(w2[i * d.n_k + j]) - w[i * d.n_k + j]);
        l1 += e;
        mx = std::max(mx, e);
      }
    std::printf("compare   %s: mean row L1 %.4g  max abs %.4g\n", other->spec().c_str(), l1 / d.n_q, mx);
    std::printf("wrote     %s\n", cmp_file.c_str());
  }
  if (png) {
    const std::string png_path = args.str("--png");
    std::vector<std::string> a{out_path, "--out", png_path, "--label-a", base->spec(), "--title",
                               std::string("batch ") + std::to_string(b) + ", head " + std::to_string(h) +
                                   (p.mask.causal ? ", causal" : "")};
    if (other) a.insert(a.end(), {"--compare", cmp_file, "--label-b", other->spec()});
    if (args.has("--tokens")) a.insert(a.end(), {"--tokens", args.str("--tokens")});
    if (args.has("--log")) a.push_back("--log");
    run_heatmap(a);
    std::printf("wrote     %s\n", png_path.c_str());
  }
  return 0;
}

}  // namespace attnkit::cli
