#pragma once
// Internal: keep OpenBLAS single-threaded while OpenMP threads of ours call it.
//
// openblas_set_num_threads() is process-global, so a plain save/set/restore guard races when
// several threads run forward() at once: the second saves the first one's "1" and restores it
// last, leaving BLAS single-threaded for good (or one restores while the other is still inside its
// parallel region, which then runs BLAS multi-threaded inside OpenMP: 10-100x slower here).
// This guard counts the active guards under a mutex: the first one saves the caller's thread
// count and sets 1, the last one to leave restores it. While any guard is alive every BLAS call in
// the process is single-threaded, including calls made by unrelated threads: that is the price of
// a global setting, and it is never wrong, only slower for them.
//
// Construct it before the parallel region (not inside), only in backends that call BLAS from their
// own threads (kernelized, clustered): exact and local run SIMD tile kernels, no BLAS.
namespace attnkit {

class SingleThreadedBlas {
 public:
  SingleThreadedBlas();
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;
};

}  // namespace attnkit
