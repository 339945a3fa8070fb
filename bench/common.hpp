#pragma once
// Shared by every Google Benchmark suite: the sgemm ceiling measured in the same run, input
// problems from the same generators as the tests and the sweep, and the standard counters.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <memory>
#include <string>

#include "attnkit/attnkit.hpp"

namespace attnkit::bench {

// OpenBLAS sgemm C = A·B, all n x n (n = 2048 for the ceiling): GFLOP/s counter "GFLOPS".
// Register it in every suite with BENCHMARK(attnkit::bench::sgemm_ceiling)->Arg(2048)->UseRealTime().
inline void sgemm_ceiling(benchmark::State& st) {
  const int n = static_cast<int>(st.range(0));
  Tensor a(1, 1, n, n), b(1, 1, n, n), c(1, 1, n, n);
  for (int64_t i = 0; i < a.numel(); ++i) {
    a.data()[i] = static_cast<float>(i % 7) * 0.1f;
    b.data()[i] = static_cast<float>(i % 5) * 0.1f;
  }
  for (auto _ : st)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f,
                c.data(), n);
  st.counters["GFLOPS"] = benchmark::Counter(2.0 * n * n * n * st.iterations() * 1e-9,
                                             benchmark::Counter::kIsRate);
}

// A generated problem that owns its storage.
struct BenchProblem {
  Inputs in;
  Tensor out;
  Problem p;
  BenchProblem(InputFamily f, int64_t heads, int64_t n, int64_t d, bool causal, uint64_t seed = 1)
      : in(generate(f, 1, heads, n, d, seed)), out(1, heads, n, d) {
    p.q = in.q.view();
    p.k = in.k.view();
    p.v = in.v.view();
    p.out = out.view();
    p.mask.causal = causal;
  }
};

// Runs backend.forward(p) in the benchmark loop and sets the standard counters:
// "GFLOPS_exact_eq" (attnkit::exact_equivalent_flops / time: causal mask counted, like run and sweep), "GFLOPS" (the backend's own cost().flops /
// time) and "tokens_per_s" (n_q·batch per second).
inline void run_forward(benchmark::State& st, const Backend& b, const Problem& p) {
  const Shape d = p.validate();
  const Shape s{d.batch, d.heads, d.kv_heads, d.n_q, d.n_k, d.d, d.d_v, p.mask.causal};
  for (auto _ : st) {
    b.forward(p);
    benchmark::ClobberMemory();
  }
  const double it = static_cast<double>(st.iterations());
  st.counters["GFLOPS_exact_eq"] = benchmark::Counter(exact_equivalent_flops(p) * it * 1e-9, benchmark::Counter::kIsRate);
  st.counters["GFLOPS"] = benchmark::Counter(b.cost(s).flops * it * 1e-9, benchmark::Counter::kIsRate);
  st.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(d.batch * d.n_q) * it, benchmark::Counter::kIsRate);
  st.SetLabel(b.spec());
}

}  // namespace attnkit::bench

// BENCHMARK_MAIN() plus the OpenBLAS kernel fix of attnkit/blas.hpp, so the sgemm ceiling and any
// BLAS call inside a backend use this CPU's real kernels.
#define ATTNKIT_BENCHMARK_MAIN()                                    \
  int main(int argc, char** argv) {                                 \
    attnkit::reexec_with_fitting_blas_core(argv);                   \
    benchmark::Initialize(&argc, argv);                             \
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1; \
    benchmark::RunSpecifiedBenchmarks();                            \
    benchmark::Shutdown();                                          \
    return 0;                                                       \
  }
