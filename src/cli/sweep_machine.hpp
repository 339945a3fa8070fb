#pragma once
// What a sweep records about the machine it ran on, and how it measures memory.
#include <functional>
#include <string>

namespace attnkit::cli {

struct MachineInfo {
  std::string cpu;       // model name from /proc/cpuinfo
  int cores = 0;         // online CPUs
  int threads = 0;       // OpenMP threads used
  std::string compiler;  // compiler that built attnkit
  std::string blas;      // openblas_get_config()
  std::string simd;      // SIMD path of the kernels
  std::string lowp;      // kernel set of precision=bf16|int8 (attnkit::precision_path(), docs/precision.md)
};

MachineInfo machine_info();

// GFLOP/s of OpenBLAS sgemm n x n x n (best of a few runs), using every thread BLAS may use.
double sgemm_gflops(int n);

// Pays the one-time start-up costs before the first timed case, so that no case pays them: runs
// `step` (one forward call of the first input) until OpenMP's thread pool is up, the pages are
// touched, the clock has ramped and OpenBLAS's worker threads (left spinning by the sgemm probe)
// have gone to sleep: for at least min_s seconds and until the last 5 calls agree within 10%, at
// most max_s seconds. Returns the seconds spent.
double warm_up(const std::function<void()>& step, double min_s, double max_s);

// Peak-memory probe: reset() makes the kernel's peak-RSS mark equal to the current RSS (Linux
// /proc/self/clear_refs); extra_mib() is then the peak growth since reset in MiB. Where the kernel
// refuses, available() is false and extra_mib() returns NaN.
class PeakMemory {
 public:
  PeakMemory();
  bool available() const { return ok_; }
  void reset();
  double extra_mib() const;

 private:
  bool ok_ = false;
  long base_kib_ = 0;
};

}  // namespace attnkit::cli
