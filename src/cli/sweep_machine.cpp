#include "sweep_machine.hpp"

#include "attnkit/simd.hpp"

#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>


namespace attnkit::cli {

namespace {
long status_kib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(f, line))
    if (line.rfind(k, 0) == 0) return std::stol(line.substr(k.size()));
  return -1;
}
}  // namespace

MachineInfo machine_info() {
  MachineInfo m;
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      m.cpu = line.substr(line.find(':') + 2);
      break;
    }
  m.cores = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  m.threads = omp_get_max_threads();
  m.compiler = std::string("g++ ") + __VERSION__;
  m.blas = openblas_get_config();
  m.simd = simd_path();
  m.lowp = precision_path();
  return m;
}

double sgemm_gflops(int n) {
  std::vector<float> a(static_cast<size_t>(n) * n, 0.5f), b(a.size(), 0.25f), c(a.size());
  double best = 1e30;
  for (int r = 0; r < 4; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * n * n * n / best / 1e9;
}

double warm_up(const std::function<void()>& step, double min_s, double max_s) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  std::vector<double> last;
  for (;;) {
    const auto t0 = Clock::now();
    step();
    const auto t1 = Clock::now();
    last.push_back(std::chrono::duration<double>(t1 - t0).count());
    if (last.size() > 5) last.erase(last.begin());
    const double spent = std::chrono::duration<double>(t1 - start).count();
    const bool steady = last.size() == 5 && *std::max_element(last.begin(), last.end()) <=
                                                1.1 * *std::min_element(last.begin(), last.end());
    if ((spent >= min_s && steady) || spent >= max_s) return spent;
  }
}

PeakMemory::PeakMemory() {
  std::ofstream f("/proc/self/clear_refs");
  ok_ = static_cast<bool>(f) && status_kib("VmHWM") >= 0;
}

void PeakMemory::reset() {
  if (!ok_) return;
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.close();
  base_kib_ = status_kib("VmRSS");
}

double PeakMemory::extra_mib() const {
  if (!ok_) return NAN;
  return std::max(0L, status_kib("VmHWM") - base_kib_) / 1024.0;
}

}  // namespace attnkit::cli
