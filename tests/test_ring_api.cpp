// attnkit::ring_attention called directly, under mpirun (tests/meson.build runs it on 3 ranks):
// what the CLI test does not reach — strided [B,N,H,D] views, grouped-query heads, d_v != d,
// batch 2 with per-batch key lengths, an explicit scale — against single-process exact on the
// whole problem; and a rank given wrong local rows makes every rank throw, the others naming it.
// Each rank prints its failures; the exit status is non-zero on a rank with any.
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "attnkit/error.hpp"
#include "attnkit/exact.hpp"
#include "attnkit/ring.hpp"

using namespace attnkit;

namespace {

int failures = 0;
void expect(bool ok, int rank, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "rank %d FAIL: %s\n", rank, what.c_str());
    ++failures;
  }
}

// Dense [B, N, H, D] storage (a projection's layout) of random values, seen as [B,H,N,D].
struct Bnhd {
  std::vector<float> data;
  int64_t B, N, H, D;
  Bnhd(int64_t b, int64_t n, int64_t h, int64_t d, std::mt19937_64& rng) : data(size_t(b * n * h * d)), B(b), N(n), H(h), D(d) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (float& x : data) x = nd(rng);
  }
  MutView view() { return MutView::bnhd(data.data(), B, N, H, D); }
};

// The rows of `rows` out of a full [B,N,H,D] array, again as [B, n_r, H, D] storage.
std::vector<float> slice(const Bnhd& a, const RingRows& rows) {
  std::vector<float> out;
  for (int64_t b = 0; b < a.B; ++b)
    for (int64_t i = 0; i < rows.count(); ++i) {
      const float* src = a.data.data() + (b * a.N + rows.position(i)) * a.H * a.D;
      out.insert(out.end(), src, src + a.H * a.D);
    }
  return out;
}

void check_against_exact(MPI_Comm comm, int rank, int P, RingLayout layout, bool causal) {
  const int64_t B = 2, H = 4, G = 2, n = 203, d = 24, dv = 40;
  std::mt19937_64 rng(7);  // the same full problem on every rank
  Bnhd q(B, n, H, d, rng), k(B, n, G, d, rng), v(B, n, G, dv, rng), ref(B, n, H, dv, rng);
  Problem full;
  full.q = q.view();
  full.k = k.view();
  full.v = v.view();
  full.out = ref.view();
  full.mask.causal = causal;
  full.mask.key_lengths = {150, 203};
  full.scale = 0.3f;
  ExactBackend().forward(full);

  const RingRows rows = ring_rows(n, rank, P, layout);
  const int64_t nr = rows.count();
  std::vector<float> lq = slice(q, rows), lk = slice(k, rows), lv = slice(v, rows), lo(size_t(B * nr * H * dv), -7.0f);
  Problem local;
  local.q = ConstView::bnhd(lq.data(), B, nr, H, d);
  local.k = ConstView::bnhd(lk.data(), B, nr, G, d);
  local.v = ConstView::bnhd(lv.data(), B, nr, G, dv);
  local.out = MutView::bnhd(lo.data(), B, nr, H, dv);
  local.mask = full.mask;
  local.scale = full.scale;
  const RingStats st = ring_attention(comm, local, n, layout);
  const std::string what = std::string(ring_layout_name(layout)) + (causal ? " causal" : " full");
  expect(st.steps == P, rank, what + ": steps");
  expect(st.compute_ms >= 0 && st.wait_ms >= 0 && st.total_ms >= st.compute_ms, rank, what + ": timings");
  double err = 0, norm = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < nr; ++i)
        for (int64_t c = 0; c < dv; ++c) {
          const double want = full.out.at(b, h, rows.position(i), c), got = local.out.at(b, h, i, c);
          err += (got - want) * (got - want);
          norm += want * want;
        }
  expect(std::sqrt(err / norm) <= 1e-6, rank, what + ": relative error " + std::to_string(std::sqrt(err / norm)));
}

void check_agreed_error(MPI_Comm comm, int rank, int P) {
  const int64_t n = 60, d = 8;
  const RingRows rows = ring_rows(n, rank, P, RingLayout::Contiguous);
  const int64_t nr = rows.count() + (rank == 1 ? 1 : 0);  // rank 1 has one row too many
  std::vector<float> buf(size_t(nr * d), 0.5f), out(size_t(nr * d));
  Problem local;
  local.q = local.k = local.v = ConstView::bhnd(buf.data(), 1, 1, nr, d);
  local.out = MutView::bhnd(out.data(), 1, 1, nr, d);
  std::string msg;
  try {
    ring_attention(comm, local, n, RingLayout::Contiguous);
  } catch (const Error& e) {
    msg = e.what();
  }
  if (rank == 1)
    expect(msg.find("local.q has " + std::to_string(nr) + " rows on rank 1; expected " + std::to_string(nr - 1)) !=
               std::string::npos,
           rank, "own error: '" + msg + "'");
  else
    expect(msg.find("rank 1 rejected its arguments") != std::string::npos, rank, "other's error: '" + msg + "'");
  // Arguments that differ between ranks (here n) are an error on every rank too.
  msg.clear();
  const int64_t n2 = rank == 0 ? 61 : 60;
  const int64_t nr2 = ring_rows(n2, rank, P, RingLayout::Contiguous).count();
  local.q = local.k = local.v = ConstView::bhnd(buf.data(), 1, 1, nr2, d);
  local.out = MutView::bhnd(out.data(), 1, 1, nr2, d);
  try {
    ring_attention(comm, local, n2, RingLayout::Contiguous);
  } catch (const Error& e) {
    msg = e.what();
  }
  expect(msg.find("n differs between ranks (60 vs 61)") != std::string::npos, rank, "mismatch: '" + msg + "'");
}

}  // namespace

int main() {
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  int rank = 0, P = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &P);
  omp_set_num_threads(1);
  try {
    for (RingLayout layout : {RingLayout::Contiguous, RingLayout::Zigzag})
      for (bool causal : {false, true}) check_against_exact(MPI_COMM_WORLD, rank, P, layout, causal);
    if (P >= 2) check_agreed_error(MPI_COMM_WORLD, rank, P);
  } catch (const std::exception& e) {
    expect(false, rank, std::string("unexpected exception: ") + e.what());
  }
  MPI_Finalize();
  if (rank == 0) std::printf("ring-api: %s on rank 0\n", failures ? "FAILED" : "passed");
  return failures ? 1 : 0;
}
