// clustered attention: time vs n for C in {32, 100, 256} and topk in {0, 32}, H = 8, d = 64, on
// clustered inputs, with exact attention timed in the same run (n <= 16384) for the speedup and
// the sgemm 2048^3 ceiling. Counters: speedup_vs_exact (when exact ran for that n earlier in
// this run), rel_fro vs exact (n <= 16384), and the standard ones of common.hpp.
#include <chrono>
#include <map>

#include "common.hpp"

namespace {

using namespace attnkit;
constexpr int64_t kHeads = 8, kDim = 64, kExactMaxN = 16384;

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
  bench::BenchProblem bp(InputFamily::Clustered, kHeads, n, kDim, false);
  ExactBackend ex;
  double s = 0;
  timed_forward(st, ex, bp.p, &s);
  exact_seconds()[n] = s;
}

void BM_clustered(benchmark::State& st) {
  const int64_t n = st.range(0);
  ClusteredOptions o;
  o.clusters = st.range(1);
  o.topk = st.range(2);
  const ClusteredBackend be(o);
  bench::BenchProblem bp(InputFamily::Clustered, kHeads, n, kDim, false);
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

void clustered_args(benchmark::internal::Benchmark* b) {
  for (int64_t n : {1024, 4096, 16384, 65536})
    for (int64_t c : {32, 100, 256})
      for (int64_t k : {0, 32}) b->Args({n, c, k});
}

}  // namespace

BENCHMARK(attnkit::bench::sgemm_ceiling)->Arg(2048)->UseRealTime();
BENCHMARK(BM_exact)->RangeMultiplier(4)->Range(1024, kExactMaxN)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_clustered)->Apply(clustered_args)->ArgNames({"n", "C", "topk"})->Unit(benchmark::kMillisecond)->UseRealTime();

ATTNKIT_BENCHMARK_MAIN();
