// performer / linear: time vs n and features, actual GFLOP/s (cost()), ratio to the sgemm ceiling
// of the same run, speedup over exact (exact timed once per (n, causal), n <= 16384 only).
#include <chrono>
#include <cstdlib>
#include <map>
#include <utility>

#include "common.hpp"

namespace {

using namespace attnkit;
using Clock = std::chrono::steady_clock;

constexpr int64_t kHeads = 8, kD = 64, kMaxExactN = 16384;

// Seconds of one exact forward on the same problem, measured once per (n, causal) per process.
double exact_seconds(const Problem& p, int64_t n, bool causal) {
  static std::map<std::pair<int64_t, bool>, double> cache;
  auto it = cache.find({n, causal});
  if (it != cache.end()) return it->second;
  const ExactBackend ex;
  if (n < 4096) ex.forward(p);  // warm-up (pointless for runs of seconds)
  const auto t0 = Clock::now();
  ex.forward(p);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  cache[{n, causal}] = s;
  return s;
}

void run_kernelized(benchmark::State& st, const Backend& be, int64_t n, bool causal) {
  bench::BenchProblem bp(InputFamily::Diffuse, kHeads, n, kD, causal);
  // ATTNKIT_BENCH_NO_EXACT=1 skips the exact timings (minutes on a loaded machine) when iterating.
  const bool skip = std::getenv("ATTNKIT_BENCH_NO_EXACT") != nullptr;
  const double t_exact = n <= kMaxExactN && !skip ? exact_seconds(bp.p, n, causal) : 0.0;
  be.forward(bp.p);  // warm-up (and the projection cache)
  const auto t0 = Clock::now();
  bench::run_forward(st, be, bp.p);
  const double per_iter = std::chrono::duration<double>(Clock::now() - t0).count() / static_cast<double>(st.iterations());
  if (t_exact > 0) st.counters["speedup_vs_exact"] = t_exact / per_iter;
  st.counters["n"] = static_cast<double>(n);
}

// Args: features, n, causal.
void BM_performer(benchmark::State& st) {
  PerformerOptions o;
  o.features = st.range(0);
  const PerformerBackend be(o);
  run_kernelized(st, be, st.range(1), st.range(2) != 0);
}

// Args: n, causal.
void BM_linear(benchmark::State& st) {
  const LinearBackend be;
  run_kernelized(st, be, st.range(0), st.range(1) != 0);
}

// Args: n, causal. The exact backend on the same problems, for the speedups.
void BM_exact(benchmark::State& st) {
  bench::BenchProblem bp(InputFamily::Diffuse, kHeads, st.range(0), kD, st.range(1) != 0);
  const ExactBackend be;
  bench::run_forward(st, be, bp.p);
}

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
// (n = 16384 exact is timed once inside the kernelized runs, for their speedup counter.)
BENCHMARK(BM_exact)->Args({1024, 0})->Args({4096, 0})->Args({4096, 1})->Iterations(1)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_performer)->Apply(performer_args)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_linear)->Apply(linear_args)->Unit(benchmark::kMillisecond)->UseRealTime();

ATTNKIT_BENCHMARK_MAIN();
