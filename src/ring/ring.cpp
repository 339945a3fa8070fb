// Ring attention: P steps; in step s this rank holds the K/V block of rank (rank − s) mod P,
// forwards it to rank + 1 while attending its queries to it, and merges per row.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../simd/attend.hpp"
#include "../simd/blocks.hpp"
#include "attnkit/error.hpp"
#include "attnkit/ring.hpp"
#include "attnkit/simd.hpp"
#include "global_mask.hpp"
#include "merge.hpp"

namespace attnkit {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// What every rank must agree on, as int64 so that one MIN and one MAX reduction compare them all.
enum Field { kOk, kN, kLayout, kCausal, kBatch, kHeads, kKvHeads, kD, kDv, kScaleBits, kLengthsSize, kLengthsSum,
             kBlockK, kFields };

// Checks this rank's arguments; returns the problem's sizes or throws attnkit::Error.
Shape check_local(const Problem& local, int64_t n, int rank, int ranks, RingLayout layout, int64_t block_k) {
  const RingRows mine = ring_rows(n, rank, ranks, layout);
  Problem p = local;
  p.mask.key_lengths.clear();  // global positions: checked below against n, not the local rows
  const Shape d = p.validate();
  if (d.n_q != mine.count())
    detail::fail("ring: local.q has ", d.n_q, " rows on rank ", rank, "; expected ", mine.count(), " (", ring_layout_name(layout),
                 " layout, n=", n, ", ", ranks, " ranks)");
  if (d.n_k != mine.count())
    detail::fail("ring: local.k/v have ", d.n_k, " rows on rank ", rank, "; expected ", mine.count(), " (the same positions as q)");
  const auto& kl = local.mask.key_lengths;
  if (!kl.empty() && static_cast<int64_t>(kl.size()) != d.batch)
    detail::fail("ring: mask.key_lengths has ", kl.size(), " entries; expected the batch size ", d.batch);
  for (size_t b = 0; b < kl.size(); ++b)
    if (kl[b] < 0 || kl[b] > n) detail::fail("ring: mask.key_lengths[", b, "]=", kl[b], "; expected 0..", n, " (global)");
  if (block_k < 0 || block_k > 8192) detail::fail("ring: block_k=", block_k, "; expected 0 (auto) or 1..8192");
  // One message per step carries a whole K/V block; MPI counts are int.
  int64_t most = 0;
  for (int r = 0; r < ranks; ++r) most = std::max(most, ring_rows(n, r, ranks, layout).count());
  if (d.batch * d.kv_heads * most * (d.d + d.d_v) > INT_MAX)
    detail::fail("ring: a K/V block of ", d.batch * d.kv_heads * most * (d.d + d.d_v), " floats; expected at most ", INT_MAX,
                 " (one MPI message): use more ranks");
  return d;
}

// Every rank learns whether every rank's arguments were good and equal; throws on all if not.
void agree(MPI_Comm comm, int rank, const std::string& error, const Problem& local, const Shape& d, int64_t n,
           RingLayout layout, int64_t block_k) {
  int64_t f[kFields] = {};
  f[kOk] = error.empty() ? 1 : 0;
  if (error.empty()) {
    const float scale = local.effective_scale();
    uint32_t bits = 0;
    std::memcpy(&bits, &scale, sizeof bits);
    int64_t sum = 0;
    for (int32_t l : local.mask.key_lengths) sum += l;
    const int64_t vals[kFields] = {1, n, static_cast<int64_t>(layout), local.mask.causal, d.batch, d.heads, d.kv_heads, d.d,
                                   d.d_v, bits, static_cast<int64_t>(local.mask.key_lengths.size()), sum, block_k};
    std::copy(vals, vals + kFields, f);
  }
  int64_t lo[kFields], hi[kFields];
  MPI_Allreduce(f, lo, kFields, MPI_INT64_T, MPI_MIN, comm);
  MPI_Allreduce(f, hi, kFields, MPI_INT64_T, MPI_MAX, comm);
  int first_bad = error.empty() ? INT_MAX : rank;
  int worst = 0;
  MPI_Allreduce(&first_bad, &worst, 1, MPI_INT, MPI_MIN, comm);
  if (!error.empty()) throw Error(error);
  if (lo[kOk] == 0) detail::fail("ring: stopped because rank ", worst, " rejected its arguments (see its message)");
  static const char* names[kFields] = {"ok", "n", "layout", "mask.causal", "batch", "heads", "kv heads", "d", "d_v",
                                       "scale", "key_lengths size", "key_lengths", "block_k"};
  for (int i = 1; i < kFields; ++i)
    if (lo[i] != hi[i]) detail::fail("ring: ", names[i], " differs between ranks (", lo[i], " vs ", hi[i], "); expected the same on every rank");
}

}  // namespace

RingStats ring_attention(MPI_Comm comm, const Problem& local, int64_t n, RingLayout layout, int64_t block_k) {
  const auto t_start = Clock::now();
  int rank = 0, ranks = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &ranks);
  std::string error;
  Shape d;
  try {
    d = check_local(local, n, rank, ranks, layout, block_k);
    simd_path();  // a bad ATTNKIT_SIMD throws here, not inside the parallel region
  } catch (const std::exception& e) {
    error = e.what();
  }
  agree(comm, rank, error, local, d, n, layout, block_k);

  const RingRows mine = ring_rows(n, rank, ranks, layout);
  const int64_t nr = mine.count(), B = d.batch, H = d.heads, G = d.kv_heads, dk = d.d, dv = d.d_v;
  int64_t most = 0;
  for (int r = 0; r < ranks; ++r) most = std::max(most, ring_rows(n, r, ranks, layout).count());
  // Two blocks, each [B][G][rows][d] keys followed by [B][G][rows][d_v] values of its owner.
  const size_t cap = static_cast<size_t>(B * G * most * (dk + dv));
  auto buf0 = aligned_floats(cap), buf1 = aligned_floats(cap);
  float* bufs[2] = {buf0.get(), buf1.get()};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < G; ++g)
      for (int64_t i = 0; i < nr; ++i) {
        std::memcpy(bufs[0] + ((b * G + g) * nr + i) * dk, local.k.row(b, g, i), static_cast<size_t>(dk) * sizeof(float));
        std::memcpy(bufs[0] + B * G * nr * dk + ((b * G + g) * nr + i) * dv, local.v.row(b, g, i),
                    static_cast<size_t>(dv) * sizeof(float));
      }

  // The merged result so far: out rows in place, log-sum-exp beside them (-inf: no key yet).
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < nr; ++i) std::fill(local.out.row(b, h, i), local.out.row(b, h, i) + dv, 0.0f);
  std::vector<double> lse(static_cast<size_t>(B * H * nr), -std::numeric_limits<double>::infinity());

  Shape step_shape = d;
  step_shape.n_q = step_shape.n_k = nr;
  const simd::Blocks blocks = simd::choose_blocks(step_shape, 0, block_k);
  const int64_t bq = blocks.q, qblocks = (nr + bq - 1) / bq, tasks = B * H * qblocks;
  const float scale = local.effective_scale();
  const int next = (rank + 1) % ranks, prev = (rank + ranks - 1) % ranks;

  RingStats st;
  st.steps = ranks;
  for (int s = 0; s < ranks; ++s) {
    const int owner = (rank - s + ranks) % ranks;
    const RingRows keys = ring_rows(n, owner, ranks, layout);
    const int64_t nk = keys.count();
    const float* cur = bufs[s % 2];
    MPI_Request req[2];
    int nreq = 0;
    if (s + 1 < ranks) {  // the last block needs no forwarding
      const int64_t incoming = ring_rows(n, (rank - s - 1 + ranks) % ranks, ranks, layout).count();
      MPI_Irecv(bufs[(s + 1) % 2], static_cast<int>(B * G * incoming * (dk + dv)), MPI_FLOAT, prev, s, comm, &req[nreq++]);
      MPI_Isend(cur, static_cast<int>(B * G * nk * (dk + dv)), MPI_FLOAT, next, s, comm, &req[nreq++]);
    }
    // Key tile size as exact would pick for this block (equal tiles from n_k).
    Shape bshape = step_shape;
    bshape.n_k = nk;
    const int64_t bk = simd::choose_blocks(bshape, bq, block_k).k;

    const auto t0 = Clock::now();
#pragma omp parallel
    {
      simd::Workspace ws;
      std::vector<float> part(static_cast<size_t>(bq * dv)), rmax(static_cast<size_t>(bq)), rsum(static_cast<size_t>(bq));
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < tasks; ++t) {
        const int64_t qb = qblocks - 1 - t % qblocks;
        const int64_t bh = t / qblocks, b = bh / H, h = bh % H, g = h / (H / G);
        const int64_t r0 = qb * bq, rows = std::min(bq, nr - r0);
        const int64_t limit = local.mask.key_lengths.empty() ? n : local.mask.key_lengths[static_cast<size_t>(b)];
        const ring::GlobalMask mask(mine, keys, local.mask.causal, limit);
        const simd::KeySpan span{0, mask.end(r0 + rows - 1)};
        if (span.end == 0) continue;  // no row of this block sees any of these keys
        simd::AttendArgs a;
        a.q = local.q.row(b, h, r0);
        a.q_stride = local.q.stride[2];
        a.rows = rows;
        a.row0 = r0;
        a.k = cur + (b * G + g) * nk * dk;
        a.k_stride = dk;
        a.v = cur + B * G * nk * dk + (b * G + g) * nk * dv;
        a.v_stride = dv;
        a.d = dk;
        a.d_v = dv;
        a.scale = scale;
        a.out = part.data();
        a.out_stride = dv;
        a.row_max = rmax.data();
        a.row_sum = rsum.data();
        simd::attend(a, std::span<const simd::KeySpan>(&span, 1), &mask, bk, ws);
        for (int64_t r = 0; r < rows; ++r)
          ring::merge_row(local.out.row(b, h, r0 + r), lse[static_cast<size_t>((b * H + h) * nr + r0 + r)],
                          part.data() + r * dv, rmax[static_cast<size_t>(r)], rsum[static_cast<size_t>(r)], dv);
      }
    }
    st.compute_ms += ms_since(t0);
    const auto t1 = Clock::now();
    if (nreq) MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE);
    st.wait_ms += ms_since(t1);
  }
  st.total_ms = ms_since(t_start);
  return st;
}

}  // namespace attnkit
