#pragma once
// Internal: the online-softmax tile kernel shared by every backend that computes exact softmax
// attention over some set of keys (exact, local, clustered centroids). Not installed.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>

#include "attnkit/problem.hpp"

namespace attnkit::simd {

// Half-open range of key indices.
struct KeySpan {
  int64_t begin = 0, end = 0;
};

enum class TileKind { Full, Empty, Partial };

// Which (query, key) pairs of a tile are visible. Query rows are absolute row indices of the
// head (AttendArgs::row0 + r), keys absolute key indices.
class TileMask {
 public:
  virtual ~TileMask() = default;
  // Classifies the tile rows [q0, q0+nq) x keys [k0, k0+nk).
  virtual TileKind classify(int64_t q0, int64_t nq, int64_t k0, int64_t nk) const = 0;
  // For a Partial tile: set S[r * lds + c] = -inf for every invisible (q0+r, k0+c).
  virtual void apply(int64_t q0, int64_t nq, int64_t k0, int64_t nk, float* S, int64_t lds) const = 0;
  // Same on the transposed tile the SIMD kernels use (keys are rows, queries are columns):
  // set St[c * ldt + r] = -inf for every invisible (q0+r, k0+c). The default goes through apply()
  // on a thread-local scratch tile; override it where a direct form is cheap.
  virtual void apply_transposed(int64_t q0, int64_t nq, int64_t k0, int64_t nk, float* St, int64_t ldt) const;
};

// Rows q0.. see keys [0, end(row)) where end is non-decreasing in the row: the causal + padding mask.
class PrefixMask final : public TileMask {
 public:
  // Row i sees keys j < min(limit, i + offset + 1); offset = n_k - n_q for causal, or huge.
  PrefixMask(int64_t limit, int64_t offset, bool causal) : limit_(limit), offset_(offset), causal_(causal) {}
  int64_t end(int64_t i) const {
    int64_t e = limit_;
    if (causal_ && i + offset_ + 1 < e) e = i + offset_ + 1;
    return e < 0 ? 0 : e;
  }
  TileKind classify(int64_t q0, int64_t nq, int64_t k0, int64_t nk) const override {
    if (end(q0) >= k0 + nk) return TileKind::Full;          // first row sees the whole tile
    if (end(q0 + nq - 1) <= k0) return TileKind::Empty;     // last row sees none of it
    return TileKind::Partial;
  }
  void apply(int64_t q0, int64_t nq, int64_t k0, int64_t nk, float* S, int64_t lds) const override;
  void apply_transposed(int64_t q0, int64_t nq, int64_t k0, int64_t nk, float* St, int64_t ldt) const override;

 private:
  int64_t limit_, offset_;
  bool causal_;
};

// One block of query rows of one head, attending to keys of one kv head.
struct AttendArgs {
  const float* q = nullptr; int64_t q_stride = 0;  // rows x d, row stride in elements
  int64_t rows = 0;
  int64_t row0 = 0;                                // absolute index of the first row (for masks)
  const float* k = nullptr; int64_t k_stride = 0;  // key 0 of the head
  const float* v = nullptr; int64_t v_stride = 0;  // value 0 of the head
  int64_t d = 0, d_v = 0;
  float scale = 1;
  float* out = nullptr; int64_t out_stride = 0;    // rows x d_v
  // Optional (null: not written): per row, the softmax shift m (the row's max visible score,
  // scale included; 0 when the row saw no key) and the sum l = Σ_j exp(s_j − m) over its visible
  // keys (0 when it saw none), so log-sum-exp = m + log l. Callers that merge partial results
  // over disjoint key sets (ring attention) need it; exact leaves them null.
  float* row_max = nullptr;
  float* row_sum = nullptr;

  // Rows r0, r0 + step, ... (`rows` of them) of query head h of batch b of p, attending to kv
  // head g: q, k, v and out straight from the problem's views (row0 = r0).
  static AttendArgs for_head(const Problem& p, int64_t b, int64_t h, int64_t g, int64_t r0, int64_t rows,
                             float scale, int64_t step = 1) {
    AttendArgs a;
    a.q = p.q.row(b, h, r0);
    a.q_stride = p.q.stride[2] * step;
    a.rows = rows;
    a.row0 = r0;
    a.k = p.k.row(b, g, 0);
    a.k_stride = p.k.stride[2];
    a.v = p.v.row(b, g, 0);
    a.v_stride = p.v.stride[2];
    a.d = p.q.shape[3];
    a.d_v = p.v.shape[3];
    a.scale = scale;
    a.out = p.out.row(b, h, r0);
    a.out_stride = p.out.stride[2] * step;
    return a;
  }
};

// Per-thread scratch of attend(); reuse one per thread across calls. Every buffer is 64-byte
// aligned and only grows; its size is O(block_q * (block_k + d + d_v)).
class Workspace {
 public:
  float* scores(int64_t n);  // at least n floats, 64-byte aligned
  float* acc(int64_t n);
  float* rowstats(int64_t n);
  float* packed(int64_t n);  // the scaled, transposed query block
  // Bytes held now (for memory accounting in tests and reports).
  int64_t bytes() const;

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  struct Buf {
    std::unique_ptr<float[], Free> p;
    int64_t n = 0;
    float* get(int64_t want);
  };
  Buf s_, a_, r_, q_;
};

// out[r] = softmax over the visible keys in `spans` (ascending, disjoint) of scale * q_r·k_j,
// applied to v. Rows that see no key get zeros. Never stores more than one tile of scores.
// Runs the SIMD path picked once per process (attnkit/simd.hpp); no BLAS, no threads of its own:
// call it from inside the caller's OpenMP region. Call attnkit::simd_path() once before that
// region so that a bad ATTNKIT_SIMD value throws there and not inside it.
// Fastest with rows a multiple of 64 (AVX-512 holds 16 queries per register, four per QK
// micro-tile), block_k a multiple of 6 (keys per micro-tile), and d_v a multiple of 16.
void attend(const AttendArgs& a, std::span<const KeySpan> spans, const TileMask* mask,
            int64_t block_k, Workspace& ws);

}  // namespace attnkit::simd
