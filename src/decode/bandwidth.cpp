// read_bandwidth_gbps: the machine's streaming read bandwidth, measured in the caller's run, as the
// ceiling decode speeds are compared to.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>

#include "attnkit/decode.hpp"
#include "attnkit/error.hpp"
#include "kernel.hpp"
#include "memory.hpp"

namespace attnkit {

namespace {
// Size of the last-level cache from sysfs (index3, else the largest index), 32 MiB if unknown.
int64_t llc_bytes() {
  int64_t best = 0;
  for (int i = 0; i < 8; ++i) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
    std::string s;
    if (!(f >> s) || s.empty()) continue;
    int64_t v = 0;
    try {
      v = std::stoll(s);
    } catch (...) {
      continue;
    }
    const char unit = s.back();
    if (unit == 'K') v <<= 10;
    if (unit == 'M') v <<= 20;
    best = std::max(best, v);
  }
  return best > 0 ? best : int64_t{32} << 20;
}
}  // namespace

struct ReadProbe::Buffer {
  decode::Bytes mem;
  int64_t n = 0;  // floats
};

ReadProbe::ReadProbe(int64_t bytes) : buf_(std::make_unique<Buffer>()) {
  if (bytes < 0) detail::fail("ReadProbe: bytes=", bytes, "; expected >= 0");
  if (bytes == 0) bytes = std::max<int64_t>(16 * llc_bytes(), int64_t{256} << 20);
  buf_->n = std::max<int64_t>(1024, bytes / 4 / 1024 * 1024);
  // Memory like the cache's (memory.hpp), zero-filled so that every page is touched (and mapped)
  // before the timed reads.
  buf_->mem = decode::alloc_large(buf_->n * 4);
  std::memset(buf_->mem.get(), 0, static_cast<size_t>(buf_->n) * 4);
}

ReadProbe::~ReadProbe() = default;
ReadProbe::ReadProbe(ReadProbe&&) noexcept = default;
ReadProbe& ReadProbe::operator=(ReadProbe&&) noexcept = default;

int64_t ReadProbe::bytes() const { return buf_->n * 4; }

double ReadProbe::run() {
  const decode::Kernels& kern = decode::kernels();
  const float* const buf = reinterpret_cast<const float*>(buf_->mem.get());
  const int64_t n = buf_->n;
  double total = 0;
  const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel reduction(+ : total)
  {
    // Contiguous parts of whole 64-byte lines: each thread streams its own range.
    const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t lines = n / 16;
    const int64_t a = lines * id / nt * 16, b = lines * (id + 1) / nt * 16;
    total += kern.stream_sum(buf + a, b - a);
  }
  const auto t1 = std::chrono::steady_clock::now();
  sink_ = sink_ + total;
  const double s = std::chrono::duration<double>(t1 - t0).count();
  const double gbps = static_cast<double>(n) * 4 / s / 1e9;
  best_ = std::max(best_, gbps);
  return gbps;
}

double read_bandwidth_gbps(int64_t bytes, int repeat) {
  if (bytes < 0) detail::fail("read_bandwidth_gbps: bytes=", bytes, "; expected >= 0");
  if (repeat < 1) detail::fail("read_bandwidth_gbps: repeat=", repeat, "; expected >= 1");
  ReadProbe probe(bytes);
  for (int r = 0; r < repeat; ++r) probe.run();
  return probe.best();
}

}  // namespace attnkit
