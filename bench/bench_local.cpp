// bench_local: the `local` sliding-window backend against the machine's ceiling (OpenBLAS sgemm
// 2048³, same run) and against `exact` at the same n. H = 8, d = 64, gaussian inputs, non-causal
// (plus causal at window 256), window ∈ {64, 256, 1024}, n = 1024 … 65536.
// Counters: GFLOPS (allowed pairs, 4·|N|·d per query and head), GFLOPS_band (the score tiles
// actually multiplied, masked corners included), GFLOPS_exact_eq, speedup_vs_exact (exact
// timed in this run at the same n, up to n = 16384) and, above that, speedup_vs_exact_n2 (the
// n = 16384 exact time scaled by n²: an extrapolation, labelled as such). Complexity(oN) per
// window: the time must be linear in n at a fixed window.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <string>

#include "common.hpp"

namespace {

using attnkit::bench::BenchProblem;
constexpr int64_t kHeads = 8, kDim = 64, kExactMaxN = 16384;

// One problem at a time (n = 65536 is ~0.5 GB): reused while consecutive benchmarks share n.
BenchProblem& problem(int64_t n, bool causal) {
  static std::unique_ptr<BenchProblem> bp;
  static int64_t have_n = 0;
  if (!bp || have_n != n) {
    bp.reset();
    bp = std::make_unique<BenchProblem>(attnkit::InputFamily::Gaussian, kHeads, n, kDim, false);
    have_n = n;
  }
  bp->p.mask.causal = causal;
  return *bp;
}

// Seconds per exact forward, by (n, causal), filled by BM_exact (registered first).
std::map<std::pair<int64_t, bool>, double>& exact_seconds() {
  static std::map<std::pair<int64_t, bool>, double> m;
  return m;
}

// run_forward (the standard counters) and the wall seconds per call it took (its cost()
// bookkeeping after the loop is included: microseconds against milliseconds per call).
double timed_forward(benchmark::State& st, const attnkit::Backend& b, const attnkit::Problem& p) {
  const auto t0 = std::chrono::steady_clock::now();
  attnkit::bench::run_forward(st, b, p);
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double>(t1 - t0).count() / std::max<double>(1.0, static_cast<double>(st.iterations()));
}

// Exact at the same n; remembers its time per call for the local benchmarks' speedup counters
// (the library may call this several times while it sizes the iteration count; the last call,
// the measured one, wins).
void BM_exact(benchmark::State& st) {
  const int64_t n = st.range(0);
  const bool causal = st.range(1) != 0;
  BenchProblem& bp = problem(n, causal);
  exact_seconds()[{n, causal}] = timed_forward(st, attnkit::ExactBackend(), bp.p);
}

void BM_local(benchmark::State& st, int64_t window, bool causal) {
  const int64_t n = st.range(0);
  BenchProblem& bp = problem(n, causal);
  const attnkit::LocalBackend lb(attnkit::LocalOptions{window, 1, 0, 0, 0, 0, 0, 0});
  const double sec = timed_forward(st, lb, bp.p);
  st.SetComplexityN(n);
  const attnkit::Shape s{1, kHeads, kHeads, n, n, kDim, kDim, causal};
  const double it = static_cast<double>(st.iterations());
  st.counters["GFLOPS_band"] = benchmark::Counter(lb.computed_cost(s).flops * it * 1e-9, benchmark::Counter::kIsRate);
  const auto& ex = exact_seconds();
  if (auto e = ex.find({n, causal}); e != ex.end()) {
    st.counters["speedup_vs_exact"] = e->second / sec;
  } else if (auto e2 = ex.find({kExactMaxN, causal}); e2 != ex.end() && n > kExactMaxN) {
    const double r = static_cast<double>(n) / kExactMaxN;
    st.counters["speedup_vs_exact_n2"] = e2->second * r * r / sec;
  }
}

}  // namespace

BENCHMARK(attnkit::bench::sgemm_ceiling)->Arg(2048)->UseRealTime();
// Exact first: the local benchmarks read its times. Only up to n = 16384 (~5 s per call).
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
