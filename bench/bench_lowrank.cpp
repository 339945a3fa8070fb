// low-rank attention (issue 16): time vs n for nystrom (M in {64, 256}) and linformer (k = 256),
// H = 4, d = 64 (the acceptance shape), gaussian inputs, with exact attention timed in the
// same run (n <= 16384) for the speedup and the sgemm 2048^3 ceiling. Counters:
// speedup_vs_exact (when exact ran for that n earlier in this run), rel_fro vs exact
// (n <= 16384), and the standard ones of common.hpp.
#include <chrono>
#include <map>

#include "common.hpp"

namespace {

using namespace attnkit;
constexpr int64_t kHeads = 4, kDim = 64, kExactMaxN = 16384;

// Seconds per forward of exact, per n, measured by BM_exact in this run.
std::map<int64_t, double>& exact_seconds() {
  static std::map<int64_t, double> m;
  return m;
}

void timed_forward(benchmark::State& st, const Backend& b, const Problem& p, double* seconds) {
  const auto t0 = std::chrono::steady_clock::now();
  bench::run_forward(st, b, p);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  *seconds = s / static_cast<double>(st.iterations());
}

void BM_exact(benchmark::State& st) {
  const int64_t n = st.range(0);
  bench::BenchProblem bp(InputFamily::Gaussian, kHeads, n, kDim, false);
  ExactBackend ex;
  double s = 0;
  timed_forward(st, ex, bp.p, &s);
  exact_seconds()[n] = s;
}

void lowrank(benchmark::State& st, const Backend& be) {
  const int64_t n = st.range(0);
  bench::BenchProblem bp(InputFamily::Gaussian, kHeads, n, kDim, false);
  double s = 0;
  timed_forward(st, be, bp.p, &s);
  const auto it = exact_seconds().find(n);
  if (it != exact_seconds().end()) st.counters["speedup_vs_exact"] = it->second / s;
  if (n <= kExactMaxN) {
    Tensor ref(1, kHeads, n, kDim);
    Problem pr = bp.p;
    pr.out = ref.view();
    ExactBackend().forward(pr);
    st.counters["rel_fro"] = compare(bp.out.cview(), ref.cview()).rel_fro;
  }
}

void BM_nystrom(benchmark::State& st) { lowrank(st, NystromBackend(NystromOptions{st.range(1), 6})); }

void BM_linformer(benchmark::State& st) { lowrank(st, LinformerBackend(LinformerOptions{st.range(1), 0})); }

void nystrom_args(benchmark::internal::Benchmark* b) {
  for (int64_t n : {1024, 4096, 16384, 32768})
    for (int64_t m : {64, 256}) b->Args({n, m});
}

void linformer_args(benchmark::internal::Benchmark* b) {
  for (int64_t n : {1024, 4096, 16384, 32768}) b->Args({n, 256});
}

}  // namespace

BENCHMARK(attnkit::bench::sgemm_ceiling)->Arg(2048)->UseRealTime();
BENCHMARK(BM_exact)->RangeMultiplier(4)->Range(1024, kExactMaxN)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_nystrom)->Apply(nystrom_args)->ArgNames({"n", "M"})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_linformer)->Apply(linformer_args)->ArgNames({"n", "k"})->Unit(benchmark::kMillisecond)->UseRealTime();

ATTNKIT_BENCHMARK_MAIN();
