// The tile engine's block sizes (see blocks.hpp); path-independent, in attnkit-simd.
#include "blocks.hpp"

#include <omp.h>
#include <unistd.h>

#include <algorithm>

namespace attnkit::simd {

namespace {

int64_t l2_bytes() {
  const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  return l2 > 0 ? l2 : 1 << 20;  // unknown: assume 1 MiB
}

}  // namespace

// Block sizes when the spec leaves them at 0 (auto), from the L2 size (sysconf) and d, d_v.
// One task's working set is
//   scores bk·bq + transposed queries d·bq + accumulator bq·d_v + the K and V rows bk·(d + d_v)
// floats; it must stay in the core's L2 (budget: half of it, the rest for the streamed K/V and
// the other hyperthread). Prefer bq = 256 (K/V rows are re-read once per query block, so a bigger
// bq means less traffic, and it is a multiple of the 64 queries of an AVX-512 micro-tile) and
// bk = 252 (a multiple of the 6-key micro-tile); shrink bq first, then bk, down to 32 and 48.
// With 2 MiB of L2 and d = 64 (128) that is 512 (768) KiB. Measured on this project's machine
// (AVX-512 Xeon, 2 MiB L2, n = 4096): bq 128/512 and bk 120/504 were within the noise of
// 256 x 252. Then keep at least 4 tasks per thread so that dynamic scheduling can balance causal
// work, and no more padded rows than the next multiple of 16 (bq may depend on the thread count:
// rows are independent, results do not). Finally split n_k into equal key tiles (below).
Blocks choose_blocks(const Shape& d, int64_t want_q, int64_t want_k) {
  int64_t bq = want_q ? want_q : 256, bk = want_k ? want_k : 252;
  const auto bytes = [&] { return 4 * (bk * bq + d.d * bq + bq * d.d_v + bk * (d.d + d.d_v)); };
  const int64_t budget = l2_bytes() / 2;
  while (bytes() > budget && ((!want_q && bq > 32) || (!want_k && bk > 48))) {
    if (!want_q && bq > 32 && (bq >= bk || want_k || bk <= 48))
      bq /= 2;
    else
      bk = std::max<int64_t>(48, bk / 2 / 6 * 6);
  }
  if (!want_q) {
    const int64_t threads = omp_get_max_threads();
    const auto tasks = [&] { return d.batch * d.heads * ((d.n_q + bq - 1) / bq); };
    while (bq > 32 && tasks() < 4 * threads) bq /= 2;
    bq = std::min(bq, (d.n_q + 15) / 16 * 16);  // no padded rows beyond the next multiple of 16
  }
  if (!want_k) {
    // Equal tiles rather than full ones and a runt (n_k = 512: 3 x 174, not 252 + 252 + 8: a
    // whole softmax and accumulator pass for 8 keys). From n_k only, never from the query block
    // or the thread count, so that every row sees the same tiles: bit-identical for any threads.
    const int64_t nk = std::max<int64_t>(d.n_k, 1), tiles = (nk + bk - 1) / bk;
    bk = std::min(bk, ((nk + tiles - 1) / tiles + 5) / 6 * 6);
  }
  return {bq, bk};
}


}  // namespace attnkit::simd
