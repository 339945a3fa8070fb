// performer / linear: time vs n and features on diffuse inputs (H = 8, d = 64), with the harness's
// counters (common.hpp): rel_fro and speedup_vs_exact against exact (timed once per (n, causal),
// n <= 16384; ATTNKIT_BENCH_NO_EXACT=1 skips it when iterating), actual GFLOP/s (cost()),
// exact-equivalent GFLOP/s and its ratio to the sgemm ceiling of the same run.
#include "common.hpp"

namespace {

using namespace attnkit;

constexpr int64_t kHeads = 8, kD = 64;

bench::ProblemKey key(int64_t n, bool causal) { return {InputFamily::Diffuse, kHeads, n, kD, causal}; }

// Args: features, n, causal.
void BM_performer(benchmark::State& st) {
  PerformerOptions o;
  o.features = st.range(0);
  bench::run_candidate(st, PerformerBackend(o), key(st.range(1), st.range(2) != 0));
}

// Args: n, causal.
void BM_linear(benchmark::State& st) { bench::run_candidate(st, LinearBackend(), key(st.range(0), st.range(1) != 0)); }

// Args: n, causal. The exact backend on the same problems.
void BM_exact(benchmark::State& st) { bench::run_candidate(st, ExactBackend(), key(st.range(0), st.range(1) != 0)); }

void performer_args(benchmark::internal::Benchmark* b) {
  for (int64_t causal : {0, 1})
    for (int64_t m : {64, 128, 256, 512})
      for (int64_t n : {1024, 4096, 16384, 65536}) b->Args({m, n, causal});
}

void linear_args(benchmark::internal::Benchmark* b) {
  for (int64_t causal : {0, 1})
    for (int64_t n : {1024, 4096, 16384, 32768, 65536}) b->Args({n, causal});
}

}  // namespace

BENCHMARK(attnkit::bench::sgemm_ceiling)->Arg(2048)->UseRealTime();
// (the other exact shapes, up to n = 16384, are timed once inside the kernelized runs)
BENCHMARK(BM_exact)->Args({1024, 0})->Args({4096, 0})->Args({4096, 1})->Iterations(1)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_performer)->Apply(performer_args)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_linear)->Apply(linear_args)->Unit(benchmark::kMillisecond)->UseRealTime();

ATTNKIT_BENCHMARK_MAIN();
