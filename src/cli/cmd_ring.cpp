// `attnkit ring`: exact attention over the ranks of an MPI job (mpirun -np P attnkit ring ...).
// Each rank reads only its own rows of the .npy files (header, then one read per (batch, head,
// row range) at its offset); rank 0 collects the output rows rank by rank and writes them at
// their offsets, so no rank ever holds a whole array. Every failure before the computation (bad
// flag, unreadable or wrong-shaped file, unwritable output) is agreed on by all ranks with one
// MPI_Allreduce, so that every rank exits non-zero and none waits for a partner that has left.
#include <omp.h>

#include <climits>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "args.hpp"
#include "attnkit/error.hpp"
#include "attnkit/limits.hpp"
#include "attnkit/npy.hpp"
#include "attnkit/ring.hpp"
#include "commands.hpp"

namespace attnkit::cli {

namespace {

// MPI_Init on entry, MPI_Finalize on every way out (return or exception).
struct MpiSession {
  MpiSession() {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  }
  ~MpiSession() { MPI_Finalize(); }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
};

// Rank 0's output file, removed on any way out before it is complete: no header-only or
// half-written output is left behind by a failed run.
struct PartialFile {
  std::ofstream& f;
  const std::string& path;
  bool armed = false;  // set once the file was created
  bool keep = false;   // set once it is complete
  ~PartialFile() {
    if (!armed || keep) return;
    if (f.is_open()) f.close();
    std::remove(path.c_str());
  }
};

// A .npy of rank 2..4 seen as [B, H, N, D] (missing leading axes are 1).
struct Array4 {
  std::string flag, path;
  NpyHeader header;
  int rank = 4;
  int64_t s[4] = {1, 1, 1, 1};
};

Array4 open_array(const std::string& flag, const std::string& path) {
  Array4 a{flag, path, read_npy_header(path)};
  if (a.header.dtype != NpyArray::DType::Float32) detail::fail(flag, " ", path, ": dtype int32; expected float32");
  const size_t r = a.header.shape.size();
  if (r < 2 || r > 4) detail::fail(flag, " ", path, ": rank ", r, "; expected [B,H,N,D], [H,N,D] or [N,D]");
  for (size_t i = 0; i < r; ++i) a.s[4 - r + i] = a.header.shape[i];
  for (int64_t x : a.s)
    if (x < 1) detail::fail(flag, " ", path, ": an empty dimension; expected every dimension >= 1");
  a.rank = static_cast<int>(r);
  return a;
}

// This rank's rows of `a`: [B, H, rows.count(), D], one read per (batch, head, range).
Tensor read_rows(const Array4& a, const RingRows& rows) {
  Tensor t(a.s[0], a.s[1], rows.count(), a.s[3]);
  const MutView v = t.view();
  for (int64_t b = 0; b < a.s[0]; ++b)
    for (int64_t h = 0; h < a.s[1]; ++h) {
      int64_t local = 0;
      for (int seg = 0; seg < 2; ++seg) {
        const int64_t len = rows.end[seg] - rows.begin[seg];
        if (len == 0) continue;
        const int64_t first = ((b * a.s[1] + h) * a.s[2] + rows.begin[seg]) * a.s[3];
        read_npy_elements(a.path, a.header, first, len * a.s[3], v.row(b, h, local));
        local += len;
      }
    }
  return t;
}

// Writes rows `rows` of a dense [B, H, n_r, D] block into an open .npy of shape [B, H, n, D].
void write_rows(std::ofstream& f, int64_t data_offset, const float* block, const int64_t s[4], const RingRows& rows) {
  const int64_t nr = rows.count();
  for (int64_t b = 0; b < s[0]; ++b)
    for (int64_t h = 0; h < s[1]; ++h) {
      int64_t local = 0;
      for (int seg = 0; seg < 2; ++seg) {
        const int64_t len = rows.end[seg] - rows.begin[seg];
        if (len == 0) continue;
        f.seekp(data_offset + (((b * s[1] + h) * s[2] + rows.begin[seg]) * s[3]) * 4);
        f.write(reinterpret_cast<const char*>(block + ((b * s[1] + h) * nr + local) * s[3]),
                static_cast<std::streamsize>(len * s[3] * 4));
        local += len;
      }
    }
}

// All ranks learn whether all succeeded; a rank that failed throws its own message, the others
// name the first rank that failed.
void agree(const std::string& error, int rank, const char* what) {
  int bad = error.empty() ? INT_MAX : rank, first = INT_MAX;
  MPI_Allreduce(&bad, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!error.empty()) detail::fail("rank ", rank, ": ", error);
  if (first != INT_MAX) detail::fail("rank ", rank, ": stopping, rank ", first, " failed ", what, " (see its message)");
}

}  // namespace

int cmd_ring(const std::vector<std::string>& argv) {
  MpiSession mpi;
  int rank = 0, P = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &P);

  // Phase 1, agreed: flags, headers, shapes, this rank's rows, the output file (rank 0).
  std::string error;
  Problem p;
  Tensor q, k, v, out;
  Array4 qa, ka, va;
  RingRows mine;
  RingLayout layout = RingLayout::Contiguous;
  std::string out_path;
  std::ofstream of;
  PartialFile partial{of, out_path};
  int64_t out_offset = 0;
  bool json = false;
  try {
    Args args(argv, {"--q", "--k", "--v", "--out", "--layout", "--threads", "--key-lengths"}, {"--causal", "--json"});
    json = args.has("--json");
    layout = parse_ring_layout(args.str("--layout", "contiguous"));
    const int64_t threads = args.integer("--threads", 0, 0, kMaxThreads);
    if (threads > 0) omp_set_num_threads(static_cast<int>(threads));
    out_path = args.str("--out");
    qa = open_array("--q", args.str("--q"));
    ka = open_array("--k", args.str("--k"));
    va = open_array("--v", args.str("--v"));
    const int64_t n = qa.s[2];
    if (ka.s[2] != n || va.s[2] != n)
      detail::fail("--k/--v have ", ka.s[2], "/", va.s[2], " rows; expected n=", n, " as --q (ring attention is self-attention)");
    if (ka.s[0] != qa.s[0] || va.s[0] != qa.s[0])
      detail::fail("--k/--v batch ", ka.s[0], "/", va.s[0], "; expected ", qa.s[0], " as --q");
    if (va.s[1] != ka.s[1]) detail::fail("--v heads ", va.s[1], "; expected ", ka.s[1], " as --k");
    if (qa.s[1] % ka.s[1] != 0) detail::fail("--q heads ", qa.s[1], " with --k heads ", ka.s[1], "; expected a multiple");
    if (ka.s[3] != qa.s[3]) detail::fail("--k dim ", ka.s[3], "; expected d=", qa.s[3], " as --q");
    if (args.has("--key-lengths")) p.mask.key_lengths = load_key_lengths(args.str("--key-lengths"), qa.s[0]);
    p.mask.causal = args.has("--causal");
    mine = ring_rows(n, rank, P, layout);
    q = read_rows(qa, mine);
    k = read_rows(ka, mine);
    v = read_rows(va, mine);
    out = Tensor(qa.s[0], qa.s[1], mine.count(), va.s[3]);
    p.q = q.view();
    p.k = k.view();
    p.v = v.view();
    p.out = out.view();
    if (rank == 0) {
      std::vector<int64_t> shape{qa.s[0], qa.s[1], n, va.s[3]};
      shape.erase(shape.begin(), shape.begin() + (4 - qa.rank));
      const std::string head = npy_header(shape);
      of.open(out_path, std::ios::binary | std::ios::trunc);
      if (!of) detail::fail("--out ", out_path, ": cannot open for writing");
      partial.armed = true;
      of.write(head.data(), static_cast<std::streamsize>(head.size()));
      out_offset = static_cast<int64_t>(head.size());
    }
  } catch (const std::exception& e) {  // attnkit::Error, or bad_alloc for a file too large
    error = e.what();
  }
  agree(error, rank, "to read its input");

  // Phase 2: the computation, timed between barriers.
  const int64_t n = qa.s[2];
  MPI_Barrier(MPI_COMM_WORLD);
  const double t0 = MPI_Wtime();
  const RingStats st = ring_attention(MPI_COMM_WORLD, p, n, layout);
  MPI_Barrier(MPI_COMM_WORLD);
  const double ms = (MPI_Wtime() - t0) * 1e3;
  const double mine_stats[3] = {st.compute_ms, st.wait_ms, static_cast<double>(mine.count())};
  std::vector<double> all(static_cast<size_t>(3 * P));
  MPI_Gather(mine_stats, 3, MPI_DOUBLE, all.data(), 3, MPI_DOUBLE, 0, MPI_COMM_WORLD);

  // Phase 3: rank 0 collects and writes the output rows, rank by rank.
  const int64_t per_row = qa.s[0] * qa.s[1] * va.s[3];
  int written = 1;
  if (rank == 0) {
    const int64_t os[4] = {qa.s[0], qa.s[1], n, va.s[3]};
    write_rows(of, out_offset, out.data(), os, mine);
    std::vector<float> block;
    for (int r = 1; r < P; ++r) {
      const RingRows rows = ring_rows(n, r, P, layout);
      block.resize(static_cast<size_t>(rows.count() * per_row));
      MPI_Recv(block.data(), static_cast<int>(block.size()), MPI_FLOAT, r, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      write_rows(of, out_offset, block.data(), os, rows);
    }
    of.close();
    written = of ? 1 : 0;
  } else {
    MPI_Send(out.data(), static_cast<int>(mine.count() * per_row), MPI_FLOAT, 0, 0, MPI_COMM_WORLD);
  }
  MPI_Bcast(&written, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (!written) detail::fail("rank ", rank, ": rank 0 could not write --out ", out_path);
  partial.keep = true;
  if (rank != 0) return 0;

  // Exact-equivalent flops, as `attnkit run` counts them (causal not halved).
  const double flops = 4.0 * qa.s[0] * qa.s[1] * double(n) * double(n) * qa.s[3];
  if (json) {
    std::printf("{\"command\": \"ring\", \"size\": %d, \"layout\": \"%s\", \"causal\": %s, \"threads\": %d, "
                "\"shape\": {\"batch\": %lld, \"heads\": %lld, \"kv_heads\": %lld, \"n\": %lld, \"d\": %lld, \"d_v\": %lld}, "
                "\"ms\": %.6g, \"gflops\": %.6g, \"ranks\": [",
                P, ring_layout_name(layout), p.mask.causal ? "true" : "false", omp_get_max_threads(), (long long)qa.s[0],
                (long long)qa.s[1], (long long)ka.s[1], (long long)n, (long long)qa.s[3], (long long)va.s[3], ms,
                flops / (ms * 1e-3) / 1e9);
    for (int r = 0; r < P; ++r)
      std::printf("%s{\"rank\": %d, \"rows\": %lld, \"compute_ms\": %.6g, \"wait_ms\": %.6g}", r ? ", " : "", r,
                  (long long)all[size_t(3 * r + 2)], all[size_t(3 * r)], all[size_t(3 * r + 1)]);
    std::printf("]}\n");
  } else {
    std::printf("ring      %d ranks, %s layout%s, %d threads per rank\n", P, ring_layout_name(layout),
                p.mask.causal ? ", causal" : "", omp_get_max_threads());
    std::printf("shape     q [%lld,%lld,%lld,%lld]  k/v heads %lld  d_v %lld\n", (long long)qa.s[0], (long long)qa.s[1],
                (long long)n, (long long)qa.s[3], (long long)ka.s[1], (long long)va.s[3]);
    std::printf("time      %.3f ms  (%.2f GFLOP/s exact-equivalent, 4*B*H*n*n*d / time)\n", ms, flops / (ms * 1e-3) / 1e9);
    for (int r = 0; r < P; ++r)
      std::printf("rank %-4d rows %lld  compute %.3f ms  wait %.3f ms\n", r, (long long)all[size_t(3 * r + 2)],
                  all[size_t(3 * r)], all[size_t(3 * r + 1)]);
    std::printf("wrote     %s\n", out_path.c_str());
  }
  return 0;
}

}  // namespace attnkit::cli
