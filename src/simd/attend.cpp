// The path-independent part of the tile kernel: scratch buffers, the prefix mask, and the entry
// point that forwards to the SIMD path chosen for this process (dispatch.cpp).
#include "attend.hpp"

#include <algorithm>
#include <limits>
#include <new>
#include <vector>

#include "paths.hpp"

namespace attnkit::simd {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
}  // namespace

float* Workspace::Buf::get(int64_t want) {
  if (want > n) {
    // Round up to whole cache lines; std::aligned_alloc wants a multiple of the alignment.
    const int64_t count = (want + 15) / 16 * 16;
    void* raw = std::aligned_alloc(64, static_cast<size_t>(count) * sizeof(float));
    if (!raw) throw std::bad_alloc();
    p.reset(static_cast<float*>(raw));
    n = count;
  }
  return p.get();
}

float* Workspace::scores(int64_t n) { return s_.get(n); }
float* Workspace::acc(int64_t n) { return a_.get(n); }
float* Workspace::rowstats(int64_t n) { return r_.get(n); }
float* Workspace::packed(int64_t n) { return q_.get(n); }
int64_t Workspace::bytes() const { return (s_.n + a_.n + r_.n + q_.n) * static_cast<int64_t>(sizeof(float)); }

void TileMask::apply_transposed(int64_t q0, int64_t nq, int64_t k0, int64_t nk, float* St, int64_t ldt) const {
  // Generic form for masks that only implement apply(): mark a zero tile, copy the -infs over.
  thread_local std::vector<float> tile;
  tile.assign(static_cast<size_t>(nq * nk), 0.0f);
  apply(q0, nq, k0, nk, tile.data(), nk);
  for (int64_t r = 0; r < nq; ++r)
    for (int64_t c = 0; c < nk; ++c)
      if (tile[static_cast<size_t>(r * nk + c)] == kNegInf) St[c * ldt + r] = kNegInf;
}

void PrefixMask::apply(int64_t q0, int64_t nq, int64_t k0, int64_t nk, float* S, int64_t lds) const {
  for (int64_t r = 0; r < nq; ++r) {
    const int64_t e = end(q0 + r);
    for (int64_t c = std::max<int64_t>(0, e - k0); c < nk; ++c) S[r * lds + c] = kNegInf;
  }
}

void PrefixMask::apply_transposed(int64_t q0, int64_t nq, int64_t k0, int64_t nk, float* St, int64_t ldt) const {
  // end() is non-decreasing in the row, so the rows that cannot see key k0 + c are a prefix
  // [0, r) that grows with c: contiguous stores along each key row of St.
  int64_t r = 0;
  for (int64_t c = 0; c < nk; ++c) {
    while (r < nq && end(q0 + r) <= k0 + c) ++r;
    std::fill(St + c * ldt, St + c * ldt + r, kNegInf);
  }
}

void attend(const AttendArgs& a, std::span<const KeySpan> spans, const TileMask* mask, int64_t block_k,
            Workspace& ws) {
  active_path().attend(a, spans, mask, block_k, ws);
}

}  // namespace attnkit::simd
