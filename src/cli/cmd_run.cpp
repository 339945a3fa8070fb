#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "args.hpp"
#include "attnkit/error.hpp"
#include "attnkit/limits.hpp"
#include "attnkit/metrics.hpp"
#include "attnkit/npy.hpp"
#include "attnkit/registry.hpp"
#include "attnkit/simd.hpp"
#include "commands.hpp"
#include "json.hpp"

namespace attnkit::cli {

int cmd_run(const std::vector<std::string>& argv) {
  Args args(argv, {"--backend", "--q", "--k", "--v", "--out", "--key-lengths", "--scale", "--threads", "--repeat"},
            {"--causal", "--check", "--json"});
  const auto backend = make_backend(args.str("--backend"));
  int rank = 4;
  Tensor q = load_tensor("--q", args.str("--q"), &rank);
  Tensor k = load_tensor("--k", args.str("--k"));
  Tensor v = load_tensor("--v", args.str("--v"));
  const std::string out_path = args.str("--out");
  const int64_t threads = args.integer("--threads", 0, 0, kMaxThreads);
  const int64_t repeat = args.integer("--repeat", 1, 1, 100000);
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));

  Problem p;
  p.q = q.view();
  p.k = k.view();
  p.v = v.view();
  p.scale = load_scale(args);
  p.mask.causal = args.has("--causal");
  if (args.has("--key-lengths")) p.mask.key_lengths = load_key_lengths(args.str("--key-lengths"), q.shape()[0]);
  Tensor out(q.shape()[0], q.shape()[1], q.shape()[2], v.shape()[3]);
  p.out = out.view();
  p.validate();  // shape errors before any timing

  std::vector<double> ms;
  for (int64_t r = 0; r < repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    backend->forward(p);
    const auto t1 = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double best = sorted.front(), median = sorted[sorted.size() / 2];
  // Which SIMD path each kernel group of the backend ran on (before --check runs other code).
  std::string kernels_json, kernels_text;
  for (const auto& [group, path] : simd_kernel_paths()) {
    if (path.empty()) continue;
    kernels_json += (kernels_json.empty() ? "" : ", ") + ("\"" + group + "\": \"" + path + "\"");
    kernels_text += (kernels_text.empty() ? "" : ", ") + group + " " + path;
  }
  // precision=bf16|int8 (exact, local, pruned; only those print it in their spec) ran on this kernel set.
  const std::string spec = backend->spec();
  const size_t pk = spec.find("precision=");
  const std::string precision = pk == std::string::npos ? "" : spec.substr(pk + 10, spec.find(',', pk) - pk - 10);
  // The set the kernels recorded ({"lowp", set} of simd_kernel_paths()), else the process's choice.
  std::string lowp_set;
  if (!precision.empty()) {
    for (const auto& [group, path] : simd_kernel_paths())
      if (group == "lowp") lowp_set = path;
    if (lowp_set.empty()) lowp_set = precision_path();
  }
  const Shape d = p.dims();
  const double gflops = exact_equivalent_flops(p) / (best * 1e-3) / 1e9;
  save_tensor(out_path, out, rank);

  ErrorMetrics em;
  double baseline_rel = 0;
  if (args.has("--check")) {
    Tensor ref(q.shape()[0], q.shape()[1], q.shape()[2], v.shape()[3]);
    Problem pr = p;
    pr.out = ref.view();
    make_backend("reference")->forward(pr);
    em = compare(out.cview(), ref.cview());
    Tensor base(q.shape()[0], q.shape()[1], q.shape()[2], v.shape()[3]);
    mean_value_baseline(p, base.view());
    baseline_rel = compare(base.cview(), ref.cview()).rel_fro;
  }
  const int nthreads = omp_get_max_threads();
  if (args.has("--json")) {
    std::printf("{\"backend\": %s, \"shape\": {\"batch\": %lld, \"heads\": %lld, \"kv_heads\": %lld, \"n_q\": %lld, "
                "\"n_k\": %lld, \"d\": %lld, \"d_v\": %lld}, \"causal\": %s, \"threads\": %d, \"repeat\": %lld, "
                "\"ms_best\": %.6g, \"ms_median\": %.6g, \"gflops\": %.6g",
                json_string(backend->spec()).c_str(), (long long)d.batch, (long long)d.heads, (long long)d.kv_heads,
                (long long)d.n_q, (long long)d.n_k, (long long)d.d, (long long)d.d_v,
                p.mask.causal ? "true" : "false", nthreads, (long long)repeat, best, median, gflops);
    std::printf(", \"simd\": \"%s\", \"simd_kernels\": {%s}", simd_path().c_str(), kernels_json.c_str());
    if (!precision.empty())
      std::printf(", \"precision\": \"%s\", \"precision_kernels\": \"%s\"", precision.c_str(), lowp_set.c_str());
    if (args.has("--check"))
      std::printf(", \"max_abs\": %.6g, \"rel_fro\": %.6g, \"mean_row_l2\": %.6g, \"baseline_rel_fro\": %.6g",
                  em.max_abs, em.rel_fro, em.mean_row_l2, baseline_rel);
    std::printf("}\n");
  } else {
    std::printf("backend   %s\n", backend->spec().c_str());
    std::printf("shape     q [%lld,%lld,%lld,%lld]  k/v heads %lld  n_k %lld  d_v %lld%s\n", (long long)d.batch,
                (long long)d.heads, (long long)d.n_q, (long long)d.d, (long long)d.kv_heads, (long long)d.n_k,
                (long long)d.d_v, p.mask.causal ? "  causal" : "");
    std::printf("time      best %.3f ms  median %.3f ms  (%lld runs, %d threads)\n", best, median,
                (long long)repeat, nthreads);
    std::printf("simd      %s (kernels run: %s)\n", simd_path().c_str(),
                kernels_text.empty() ? "none" : kernels_text.c_str());
    if (!precision.empty())
      std::printf("precision %s on the %s kernel set (docs/precision.md)\n", precision.c_str(), lowp_set.c_str());
    std::printf("speed     %.2f GFLOP/s (exact-equivalent: exact attention's flops, causal mask counted, / best)\n", gflops);
    if (args.has("--check"))
      std::printf("check     vs reference: max_abs %.3g  rel_fro %.3g  mean_row_l2 %.3g  (mean-of-V baseline rel_fro %.3g)\n",
                  em.max_abs, em.rel_fro, em.mean_row_l2, baseline_rel);
    std::printf("wrote     %s\n", out_path.c_str());
  }
  return 0;
}

}  // namespace attnkit::cli
