// low-rank attention (issue 16): time vs n for nystrom (M in {64, 256}) and linformer (k = 256),
// H = 4, d = 64 (the acceptance shape), gaussian inputs, non-causal, with the harness's
// counters (common.hpp): rel_fro and speedup_vs_exact against exact (timed once per n in this run,
// n <= 16384; speedup_vs_exact_n2 above), GFLOPS (cost()), GFLOPS_exact_eq, ratio_sgemm.
#include "common.hpp"

namespace {

using namespace attnkit;
constexpr int64_t kHeads = 4, kDim = 64;

bench::ProblemKey key(int64_t n) { return {InputFamily::Gaussian, kHeads, n, kDim, false}; }

void BM_exact(benchmark::State& st) { bench::run_candidate(st, ExactBackend(), key(st.range(0))); }

void BM_nystrom(benchmark::State& st) {
  bench::run_candidate(st, NystromBackend(NystromOptions{st.range(1), 6}), key(st.range(0)));
}

void BM_linformer(benchmark::State& st) {
  bench::run_candidate(st, LinformerBackend(LinformerOptions{st.range(1), 0}), key(st.range(0)));
}

void nystrom_args(benchmark::internal::Benchmark* b) {
  for (int64_t n : {1024, 4096, 16384, 32768})
    for (int64_t m : {64, 256}) b->Args({n, m});
}

void linformer_args(benchmark::internal::Benchmark* b) {
  for (int64_t n : {1024, 4096, 16384, 32768}) b->Args({n, 256});
}

}  // namespace

BENCHMARK(attnkit::bench::sgemm_ceiling)->Arg(2048)->UseRealTime();
BENCHMARK(BM_exact)->RangeMultiplier(4)->Range(1024, bench::kExactMaxN)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_nystrom)->Apply(nystrom_args)->ArgNames({"n", "M"})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_linformer)->Apply(linformer_args)->ArgNames({"n", "k"})->Unit(benchmark::kMillisecond)->UseRealTime();

ATTNKIT_BENCHMARK_MAIN();
