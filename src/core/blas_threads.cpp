// Reference-counted single-threaded BLAS section; see blas_threads.hpp for why.
#include "blas_threads.hpp"

#include <cblas.h>

#include <mutex>

namespace attnkit {

namespace {
std::mutex mu;
int active = 0;  // guards alive now
int saved = 1;   // the thread count before the first of them
}  // namespace

SingleThreadedBlas::SingleThreadedBlas() {
  std::lock_guard<std::mutex> lock(mu);
  if (active++ == 0) {
    saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
  }
}

SingleThreadedBlas::~SingleThreadedBlas() {
  std::lock_guard<std::mutex> lock(mu);
  if (--active == 0) openblas_set_num_threads(saved);
}

}  // namespace attnkit
