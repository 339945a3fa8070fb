// clustered attention: time vs n for C in {32, 100, 256} and topk in {0, 32}, H = 8, d = 64, on
// clustered inputs, with exact timed in the same run (n <= 16384) and the sgemm 2048³ ceiling.
// Counters: those of the harness (common.hpp): rel_fro and speedup_vs_exact against exact,
// speedup_vs_exact_n2 above n = 16384, GFLOPS (cost()), GFLOPS_exact_eq, ratio_sgemm.
#include "common.hpp"

namespace {

using namespace attnkit;
constexpr int64_t kHeads = 8, kDim = 64;

bench::ProblemKey key(int64_t n) { return {InputFamily::Clustered, kHeads, n, kDim, false}; }

void BM_exact(benchmark::State& st) { bench::run_candidate(st, ExactBackend(), key(st.range(0))); }

void BM_clustered(benchmark::State& st) {
  ClusteredOptions o;
  o.clusters = st.range(1);
  o.topk = st.range(2);
  bench::run_candidate(st, ClusteredBackend(o), key(st.range(0)));
}

void clustered_args(benchmark::internal::Benchmark* b) {
  for (int64_t n : {1024, 4096, 16384, 65536})
    for (int64_t c : {32, 100, 256})
      for (int64_t k : {0, 32}) b->Args({n, c, k});
}

}  // namespace

BENCHMARK(attnkit::bench::sgemm_ceiling)->Arg(2048)->UseRealTime();
BENCHMARK(BM_exact)->RangeMultiplier(4)->Range(1024, bench::kExactMaxN)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_clustered)->Apply(clustered_args)->ArgNames({"n", "C", "topk"})->Unit(benchmark::kMillisecond)->UseRealTime();

ATTNKIT_BENCHMARK_MAIN();
