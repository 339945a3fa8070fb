// The process-wide, reference-counted BLAS thread guard (src/core/blas_threads.hpp).
#include <catch2/catch.hpp>
#include <cblas.h>

#include <atomic>
#include <thread>
#include <vector>

#include "../src/core/blas_threads.hpp"

using namespace attnkit;

TEST_CASE("SingleThreadedBlas: concurrent guards restore the caller's thread count", "[core]") {
  const int before = openblas_get_num_threads();
  std::atomic<int> not_single{0};  // Catch2 assertions are not thread-safe: count, check after
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        SingleThreadedBlas guard;
        if (openblas_get_num_threads() != 1) ++not_single;
      }
    });
  for (auto& t : ts) t.join();
  CHECK(not_single == 0);
  CHECK(openblas_get_num_threads() == before);
}
