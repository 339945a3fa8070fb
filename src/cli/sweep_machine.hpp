#pragma once
// What a sweep records about the machine it ran on, and how it measures memory.
#include <string>

namespace attnkit::cli {

struct MachineInfo {
  std::string cpu;       // model name from /proc/cpuinfo
  int cores = 0;         // online CPUs
  int threads = 0;       // OpenMP threads used
  std::string compiler;  // compiler that built attnkit
  std::string blas;      // openblas_get_config()
  std::string simd;      // SIMD path of the kernels
};

MachineInfo machine_info();

// GFLOP/s of OpenBLAS sgemm n x n x n (best of a few runs), using every thread BLAS may use.
double sgemm_gflops(int n);

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
