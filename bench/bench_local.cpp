// bench_local: the `local` sliding-window backend against the machine's ceiling (OpenBLAS sgemm
// 2048³, same run) and against `exact` at the same n. H = 8, d = 64, gaussian inputs, non-causal
// (plus causal at window 256), window ∈ {64, 256, 1024}, n = 1024 … 65536.
// Counters: those of the harness (common.hpp: rel_fro and speedup_vs_exact against exact up to
// n = 16384, speedup_vs_exact_n2 above, GFLOPS = allowed pairs, 4·|N|·d per query and head,
// GFLOPS_exact_eq, ratio_sgemm) and GFLOPS_band (the score tiles actually multiplied, masked
// corners included). Complexity(oN) per window: the time must be linear in n at a fixed window.
#include "common.hpp"

namespace {

constexpr int64_t kHeads = 8, kDim = 64;

attnkit::bench::ProblemKey key(int64_t n, bool causal) {
  return {attnkit::InputFamily::Gaussian, kHeads, n, kDim, causal};
}

// Exact at the same n: through the harness its time becomes the cached one the local benchmarks'
// speedups use.
void BM_exact(benchmark::State& st) {
  attnkit::bench::run_candidate(st, attnkit::ExactBackend(), key(st.range(0), st.range(1) != 0));
}

void BM_local(benchmark::State& st, int64_t window, bool causal) {
  const int64_t n = st.range(0);
  const attnkit::LocalBackend lb(attnkit::LocalOptions{window, 1, 0, 0, 0, 0, 0, 0});
  attnkit::bench::run_candidate(st, lb, key(n, causal));
  st.SetComplexityN(n);
  const attnkit::Shape s{1, kHeads, kHeads, n, n, kDim, kDim, causal};
  st.counters["GFLOPS_band"] = benchmark::Counter(lb.computed_cost(s).flops * static_cast<double>(st.iterations()) * 1e-9,
                                                  benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(attnkit::bench::sgemm_ceiling)->Arg(2048)->UseRealTime();
// Exact first: the local benchmarks use its times. Only up to n = 16384 (~5 s per call).
BENCHMARK(BM_exact)->Args({1024, 0})->Args({4096, 0})->Args({16384, 0})->Args({16384, 1})
    ->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_local, window64, 64, false)->RangeMultiplier(4)->Range(1024, 65536)
    ->UseRealTime()->Unit(benchmark::kMillisecond)->Complexity(benchmark::oN);
BENCHMARK_CAPTURE(BM_local, window256, 256, false)->RangeMultiplier(4)->Range(1024, 65536)
    ->UseRealTime()->Unit(benchmark::kMillisecond)->Complexity(benchmark::oN);
BENCHMARK_CAPTURE(BM_local, window1024, 1024, false)->RangeMultiplier(4)->Range(1024, 65536)
    ->UseRealTime()->Unit(benchmark::kMillisecond)->Complexity(benchmark::oN);
BENCHMARK_CAPTURE(BM_local, window256_causal, 256, true)->Arg(16384)->Arg(65536)
    ->UseRealTime()->Unit(benchmark::kMillisecond);

ATTNKIT_BENCHMARK_MAIN();
