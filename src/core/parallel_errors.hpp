#pragma once
// Internal: carrying an exception (std::bad_alloc above all) out of an OpenMP parallel region.
//
// An exception may not leave a parallel region (std::terminate: the process aborts), and a thread
// that skips a worksharing loop leaves the others waiting at its barrier. So the work of a region
// that can throw runs through run(): the first exception is kept, every later run() is skipped,
// every thread still reaches every barrier, and rethrow() after the region throws the kept
// exception in the calling thread (the output is then unspecified, as for any throwing call).
//
//   ParallelErrors errors;
//   #pragma omp parallel
//   {
//     std::optional<Scratch> s;
//     errors.run([&] { s.emplace(...); });
//   #pragma omp for
//     for (...) errors.run([&] { work(*s); });  // skipped once anything failed
//   }
//   errors.rethrow();
#include <atomic>
#include <exception>
#include <mutex>

namespace attnkit {

class ParallelErrors {
 public:
  template <class F>
  void run(F&& f) noexcept {
    if (failed_.load(std::memory_order_relaxed)) return;
    try {
      f();
    } catch (...) {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (!first_) first_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
  }
  void rethrow() const {
    if (first_) std::rethrow_exception(first_);
  }
  // After the region: whether anything threw (for callers whose state the partial work changed).
  bool failed() const { return first_ != nullptr; }

 private:
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::exception_ptr first_;
};

}  // namespace attnkit
