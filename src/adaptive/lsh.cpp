// lsh: Reformer-style LSH attention. Per (batch, head): buckets and sorted orders of every round
// (lsh_plan_round, rounds in parallel), then round by round one task per chunk: softmax of the
// chunk's queries over its key-rank range (gathered rows on exact's tile engine, keys an earlier
// round gave the query masked out), merged into the output rows by a running log-sum-exp.
// rest=mean: the key block sums of its term are computed once per (batch, kv head), in the
// region of the kv head's first query head, and the rows of all its query heads are finished
// together in the region of its last one.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <span>

#include "../core/blas_rows.hpp"
#include "../core/blas_threads.hpp"
#include "../simd/attend.hpp"
#include "attnkit/adaptive.hpp"
#include "attnkit/error.hpp"
#include "attnkit/simd.hpp"
#include "lsh_plan.hpp"
#include "lsh_rest.hpp"
#include "../core/numerics.hpp"
#include "../core/parallel_errors.hpp"
#include "sets.hpp"

namespace attnkit {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct ChunkScratch {
  std::vector<float> q, k, v, o, m, l;
  std::vector<int32_t> hidden, lo, seen;
  std::vector<uint32_t> width;
  simd::Workspace ws;
};

// Every round's view of one (batch, head), laid out per key / per query so that the duplicate
// test reads contiguous memory: key_rank[j·R + r] = rank of key j in round r's key order;
// q_lo / q_width[i·R + r] = key-rank range [lo, lo + width) that query row i sees in round r.
struct RoundTables {
  std::vector<int32_t> key_rank, q_lo, q_width;
};

// Running log-sum-exp merge of the rounds per query row (the rows of p.out hold the sum):
// out_i = Σ_r exp(lse_r − M_i) o_r / W_i with M_i the largest lse so far, W_i = Σ_r exp(lse_r − M_i);
// seen_i = |U_i|, the visible keys row i has seen in the rounds so far (rest=mean only: the rest
// term's key count; left empty with rest=none).
struct Merge {
  std::vector<double> m, w;
  std::vector<uint8_t> nan;
  std::vector<int32_t> seen;
};

// The mask of one gathered chunk (query lanes x, keys y in rank order), stored key-major like the
// engine's transposed score tile: hidden[y·nq + x] != 0 for a key after the query's position or
// padding, and for a key an earlier round already gave the query.
class ChunkMask final : public simd::TileMask {
 public:
  ChunkMask(const int32_t* hidden, int64_t nq, bool any) : hidden_(hidden), nq_(nq), any_(any) {}
  simd::TileKind classify(int64_t, int64_t, int64_t, int64_t) const override {
    return any_ ? simd::TileKind::Partial : simd::TileKind::Full;
  }
  void apply(int64_t q0, int64_t nq, int64_t k0, int64_t nk, float* S, int64_t lds) const override {
    for (int64_t r = 0; r < nq; ++r)
      for (int64_t c = 0; c < nk; ++c)
        if (hidden_[(k0 + c) * nq_ + q0 + r]) S[r * lds + c] = kNegInf;
  }
  void apply_transposed(int64_t q0, int64_t nq, int64_t k0, int64_t nk, float* St, int64_t ldt) const override {
    for (int64_t c = 0; c < nk; ++c) {
      const int32_t* hid = hidden_ + (k0 + c) * nq_ + q0;
      float* st = St + c * ldt;
      for (int64_t r = 0; r < nq; ++r) st[r] = hid[r] ? kNegInf : st[r];
    }
  }

 private:
  const int32_t* hidden_;
  int64_t nq_;
  bool any_;
};

// One chunk of round r: softmax of its queries (rows, in q_order) over its key range on the tile
// engine of `exact` (gathered rows), merged into the rows' running sums. Duplicates: a key the
// query already saw in an earlier round is masked out here, so the merged rounds are the softmax
// over the union of the rounds' key sets (the same result as Reformer's log-count correction).
// Rows of one round belong to one chunk each: tasks of one round never touch the same row.
void chunk_attend(const Problem& p, const Shape& d, int64_t b, int64_t h, const adaptive::LshRound& lr,
                  const RoundTables& tab, int64_t R, int64_t r, int64_t c, int64_t C, float scale, bool count_seen,
                  Merge& mg, ChunkScratch& sc) {
  const int64_t g = h / d.group();
  const int64_t q0 = c * C, nq = std::min(C, d.n_q - q0);
  const int64_t lo = lr.lo[static_cast<size_t>(c)], nk = lr.hi[static_cast<size_t>(c)] - lo;
  if (nk <= 0) return;  // no key: nothing to merge
  const int64_t* rows = lr.q_order.data() + q0;
  const int64_t* keys = lr.k_order.data() + lo;
  sc.q.resize(static_cast<size_t>(nq * d.d));
  sc.k.resize(static_cast<size_t>(nk * d.d));
  sc.v.resize(static_cast<size_t>(nk * d.d_v));
  sc.o.resize(static_cast<size_t>(nq * d.d_v));
  sc.m.resize(static_cast<size_t>(nq));
  sc.l.resize(static_cast<size_t>(nq));
  for (int64_t x = 0; x < nq; ++x) std::memcpy(sc.q.data() + x * d.d, p.q.row(b, h, rows[x]), sizeof(float) * d.d);
  for (int64_t y = 0; y < nk; ++y) {
    std::memcpy(sc.k.data() + y * d.d, p.k.row(b, g, keys[y]), sizeof(float) * d.d);
    std::memcpy(sc.v.data() + y * d.d_v, p.v.row(b, g, keys[y]), sizeof(float) * d.d_v);
  }
  // hidden: causal / padding, then keys seen in an earlier round (rank inside that round's range).
  sc.hidden.assign(static_cast<size_t>(nq * nk), 0);
  int32_t any = 0;
  const int64_t key_max = *std::max_element(keys, keys + nk);
  for (int64_t x = 0; x < nq; ++x) {
    const int64_t ke = p.key_end(b, rows[x]);
    if (ke > key_max) continue;  // sees every key of the chunk
    for (int64_t y = 0; y < nk; ++y) sc.hidden[static_cast<size_t>(y * nq + x)] = keys[y] >= ke;
    any = 1;
  }
  if (r > 0) {
    // the ranges of earlier rounds per query lane: range[r2·nq + x]
    sc.lo.resize(static_cast<size_t>(r * nq));
    sc.width.resize(static_cast<size_t>(r * nq));
    for (int64_t x = 0; x < nq; ++x)
      for (int64_t r2 = 0; r2 < r; ++r2) {
        sc.lo[static_cast<size_t>(r2 * nq + x)] = tab.q_lo[static_cast<size_t>(rows[x] * R + r2)];
        sc.width[static_cast<size_t>(r2 * nq + x)] = static_cast<uint32_t>(tab.q_width[static_cast<size_t>(rows[x] * R + r2)]);
      }
    int32_t hits = 0;
    for (int64_t y = 0; y < nk; ++y) {
      const int32_t* kr = tab.key_rank.data() + keys[y] * R;
      int32_t* hid = sc.hidden.data() + y * nq;
      for (int64_t r2 = 0; r2 < r; ++r2) {
        const int32_t rank = kr[r2];
        const int32_t* olo = sc.lo.data() + r2 * nq;
        const uint32_t* width = sc.width.data() + r2 * nq;
        for (int64_t x = 0; x < nq; ++x) {  // olo <= rank < olo + width as one unsigned compare
          const int32_t in = static_cast<uint32_t>(rank - olo[x]) < width[x];
          hid[x] |= in;
          hits |= in;
        }
      }
    }
    any |= hits;
  }
  // rest=mean: keys each lane sees for the first time in this chunk, the ones neither masked nor
  // seen before (the rest term counts the keys outside them)
  if (count_seen) {
    sc.seen.assign(static_cast<size_t>(nq), static_cast<int32_t>(nk));
    if (any)
      for (int64_t y = 0; y < nk; ++y) {
        const int32_t* hid = sc.hidden.data() + y * nq;
        for (int64_t x = 0; x < nq; ++x) sc.seen[static_cast<size_t>(x)] -= hid[x];
      }
  }
  simd::AttendArgs a;
  a.q = sc.q.data();
  a.q_stride = d.d;
  a.rows = nq;
  a.k = sc.k.data();
  a.k_stride = d.d;
  a.v = sc.v.data();
  a.v_stride = d.d_v;
  a.d = d.d;
  a.d_v = d.d_v;
  a.scale = scale;
  a.out = sc.o.data();
  a.out_stride = d.d_v;
  a.row_max = sc.m.data();
  a.row_sum = sc.l.data();
  const ChunkMask mask(sc.hidden.data(), nq, any != 0);
  const simd::KeySpan span{0, nk};
  simd::attend(a, std::span<const simd::KeySpan>(&span, 1), &mask, nk, sc.ws);
  for (int64_t x = 0; x < nq; ++x) {
    const size_t i = static_cast<size_t>(rows[x]);
    if (count_seen) mg.seen[i] += sc.seen[static_cast<size_t>(x)];
    const float* o = sc.o.data() + x * d.d_v;  // a NaN value reaches the sum by itself
    const float sum = sc.l[static_cast<size_t>(x)];
    if (std::isnan(sum) || std::isnan(sc.m[static_cast<size_t>(x)])) {  // a NaN score
      mg.nan[i] = 1;
      continue;
    }
    if (sum == 0) continue;  // the row sees no key of this chunk (or only ones seen before)
    // the chunk's lse in fp64: the rest term's log-mass is compared with it at full precision
    const double l = static_cast<double>(sc.m[static_cast<size_t>(x)]) + std::log(static_cast<double>(sum));
    float* acc = p.out.row(b, h, rows[x]);
    if (l > mg.m[i]) {  // new largest lse: rescale the sum so far
      const double shrink = std::exp(mg.m[i] - l);
      const float sf = static_cast<float>(shrink);
      for (int64_t y = 0; y < d.d_v; ++y) acc[y] = acc[y] * sf + o[y];
      mg.w[i] = mg.w[i] * shrink + 1.0;
      mg.m[i] = l;
    } else {
      const double e = std::exp(l - mg.m[i]);
      const float f = static_cast<float>(e);
      for (int64_t y = 0; y < d.d_v; ++y) acc[y] += o[y] * f;
      mg.w[i] += e;
    }
  }
}

// Output row i from its merged rounds: acc / W, with rest=mean (rs given, mg.seen filled) the
// term of the visible keys the row saw in no round folded in first at their estimated mass.
void finish_row(const Problem& p, const Shape& d, int64_t b, int64_t h, int64_t i, float scale, const Merge& mg,
                adaptive::RestSums* rs) {
  float* o = p.out.row(b, h, i);
  const size_t x = static_cast<size_t>(i);
  if (mg.nan[x]) {  // a NaN score
    std::fill(o, o + d.d_v, std::numeric_limits<float>::quiet_NaN());
    return;
  }
  const int64_t ke = p.key_end(b, i), rest = rs != nullptr ? ke - mg.seen[x] : 0;
  if (rest > 0) {
    rs->advance(ke);
    const double L = rs->log_mass(p.q.row(b, h, i), scale, rest);
    const double M = mg.w[x] > 0 ? mg.m[x] : L, top = std::max(M, L);
    const double a = mg.w[x] > 0 ? std::exp(M - top) : 0.0, e = std::exp(L - top);
    const double inv = 1.0 / (mg.w[x] * a + e);
    for (int64_t y = 0; y < d.d_v; ++y)
      o[y] = static_cast<float>((o[y] * a + e * rs->mean_v(static_cast<size_t>(y))) * inv);
    return;
  }
  if (mg.w[x] == 0) {  // no key in any round: zeros
    std::fill(o, o + d.d_v, 0.0f);
    return;
  }
  const float inv = static_cast<float>(1.0 / mg.w[x]);
  for (int64_t y = 0; y < d.d_v; ++y) o[y] *= inv;
}

// rest=mean's finishing tasks for batch b: consecutive rows whose key prefixes [0, key_end) lie
// in one key block, at most kRestTaskRows rows (key_end is non-decreasing in the row, so a
// task's RestSums moves forward through one block); tasks[t] is task t's first row, and the
// last entry n_q.
void rest_tasks(const Problem& p, const Shape& d, int64_t b, std::vector<int64_t>& tasks) {
  tasks.clear();
  int64_t prev = -1;
  for (int64_t i = 0; i < d.n_q; ++i) {
    const int64_t blk = p.key_end(b, i) / adaptive::kRestBlock;
    if (blk != prev || i - tasks.back() == adaptive::kRestTaskRows) tasks.push_back(i);
    prev = blk;
  }
  tasks.push_back(d.n_q);
}

constexpr Capabilities kCaps{.causal = true, .key_lengths = true, .cross = true, .gqa = true, .weights = true,
                             .causal_future_independent = false};

// The one parameter table: constructor checks, spec() and lsh_info() all use it. rounds <= 64:
// the merge keeps the rounds' weights in a fixed array.
const std::vector<ParamDef>& lsh_params() {
  static const std::vector<ParamDef> defs = {
      {"buckets", ParamType::Int, "64", 2, 4096, "hash buckets per round (even; rotation d x buckets/2)"},
      {"rounds", ParamType::Int, "4", 1, 64, "hash rounds, merged by their log-sum-exp"},
      {"chunk", ParamType::Int, "64", 1, 1048576, "queries per chunk; each chunk sees 2*chunk sorted keys"},
      {"seed", ParamType::Int, "0", 0, 9007199254740992.0, "seed of the rotations"},
      {"rest", ParamType::String, "mean", 0, 0,
       "keys a query sees in no round: mean (one term from their mean key and value) or none (dropped, as Reformer)"}};
  return defs;
}

Params lsh_resolve(const LshOptions& o) {
  return Params("lsh", lsh_params(),
                {{"buckets", std::to_string(o.buckets)},
                 {"rounds", std::to_string(o.rounds)},
                 {"chunk", std::to_string(o.chunk)},
                 {"seed", std::to_string(o.seed)},
                 {"rest", o.rest == LshRest::Mean ? "mean" : "none"}});
}

}  // namespace

LshBackend::LshBackend(LshOptions o) : opt_(o) {
  lsh_resolve(o);
  if (o.buckets % 2 != 0) detail::fail("lsh: buckets=", o.buckets, "; expected an even number ([x R, -x R] has 2 entries per column)");
}

std::string LshBackend::spec() const { return lsh_resolve(opt_).canonical(); }

Capabilities LshBackend::capabilities() const { return kCaps; }

void LshBackend::forward(const Problem& caller) const {
  const BlasRows blas_rows(caller);  // row strides BLAS accepts (blas_rows.hpp)
  const Problem& p = blas_rows.problem();
  const Shape d = check(p);
  const float scale = p.effective_scale();
  const int64_t R = opt_.rounds, C = opt_.chunk, chunks = (d.n_q + C - 1) / C;
  adaptive::lsh_check_sizes(d);  // as do sizes beyond the int32 ranks
  SingleThreadedBlas blas;
  const std::vector<std::vector<float>> rot = adaptive::lsh_rotations(opt_, d.kv_heads, d.d);
  std::vector<adaptive::LshRound> rounds(static_cast<size_t>(R));
  RoundTables tab;
  // rest=mean finishes the rows of a kv head's query heads together: one merge state per head of
  // the group (rest=none: one, each head finishes its own rows)
  const bool mean = opt_.rest == LshRest::Mean;
  const int64_t G = d.group();
  std::vector<Merge> mgs(static_cast<size_t>(mean ? G : 1));
  adaptive::RestBlocks blocks(d.d, d.d_v);
  std::vector<int64_t> tasks;
  tab.q_lo.resize(static_cast<size_t>(d.n_q * R));
  tab.q_width.resize(static_cast<size_t>(d.n_q * R));
  for (int64_t b = 0; b < d.batch; ++b) {
    const int64_t limit = p.mask.key_lengths.empty() ? d.n_k : p.mask.key_lengths[static_cast<size_t>(b)];
    tab.key_rank.resize(static_cast<size_t>(limit * R));
    if (mean) rest_tasks(p, d, b, tasks);
    const int64_t n_tasks = static_cast<int64_t>(tasks.size()) - 1;
    for (int64_t h = 0; h < d.heads; ++h) {
      const int64_t g = h / G;
      const bool first = mean && h % G == 0, last = mean && h % G == G - 1;  // of the kv head's query heads
      Merge& mg = mgs[static_cast<size_t>(mean ? h % G : 0)];
      mg.m.assign(static_cast<size_t>(d.n_q), -std::numeric_limits<double>::infinity());
      mg.w.assign(static_cast<size_t>(d.n_q), 0.0);
      mg.nan.assign(static_cast<size_t>(d.n_q), 0);
      if (mean) mg.seen.assign(static_cast<size_t>(d.n_q), 0);
      if (first) blocks.reset(p, b, g, limit);
      // Every step that allocates runs through errors.run: an exception (bad_alloc) leaves the
      // region for the caller, and once one is kept every later step is skipped (they read what
      // the failed one would have written).
      ParallelErrors errors;
#pragma omp parallel
      {
        ChunkScratch sc;
        if (first) {  // the kv head's key block sums, next to the planning (no barrier of their own)
#pragma omp for schedule(static) nowait
          for (int64_t u = 0; u < blocks.full_blocks(); ++u) errors.run([&] { blocks.sum_block(u); });
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t r = 0; r < R; ++r)
          errors.run([&] { adaptive::lsh_plan_round(p, d, opt_, rot, b, h, r, rounds[static_cast<size_t>(r)]); });
        if (first) {  // every block is summed (the barrier above); done before the next barrier
#pragma omp single nowait
          errors.run([&] { blocks.accumulate(); });
        }
#pragma omp for schedule(static)
        for (int64_t j = 0; j < limit; ++j)
          errors.run([&] {
            for (int64_t r = 0; r < R; ++r)
              tab.key_rank[static_cast<size_t>(j * R + r)] = rounds[static_cast<size_t>(r)].key_rank[static_cast<size_t>(j)];
          });
#pragma omp for schedule(static)
        for (int64_t i = 0; i < d.n_q; ++i)
          errors.run([&] {
            float* o = p.out.row(b, h, i);
            std::fill(o, o + d.d_v, 0.0f);
            for (int64_t r = 0; r < R; ++r) {
              const adaptive::LshRound& lr = rounds[static_cast<size_t>(r)];
              const size_t c = static_cast<size_t>(lr.query_chunk[static_cast<size_t>(i)]);
              tab.q_lo[static_cast<size_t>(i * R + r)] = static_cast<int32_t>(lr.lo[c]);
              tab.q_width[static_cast<size_t>(i * R + r)] = static_cast<int32_t>(lr.hi[c] - lr.lo[c]);
            }
          });
        // Round by round (the barrier after each keeps the merge order, so the result is the
        // same for any thread count); within a round every row belongs to one chunk.
        for (int64_t r = 0; r < R; ++r) {
#pragma omp for schedule(dynamic, 1)
          for (int64_t c = 0; c < chunks; ++c)
            errors.run([&] {
              chunk_attend(p, d, b, h, rounds[static_cast<size_t>(r)], tab, R, r, c, C, scale, mean, mg, sc);
            });
        }
        if (!mean) {
#pragma omp for schedule(static)
          for (int64_t i = 0; i < d.n_q; ++i) errors.run([&] { finish_row(p, d, b, h, i, scale, mg, nullptr); });
        } else if (last) {
          // the rows of every query head of kv head g (head g·G + x merged in mgs[x]); every
          // prefix's sums follow lsh_rest.hpp's definition: the same bits for any thread count
          // and task split, and as weights()
          std::optional<adaptive::RestSums> rs;
          errors.run([&] { rs.emplace(blocks); });
#pragma omp for schedule(dynamic, 1)
          for (int64_t t = 0; t < n_tasks; ++t)
            errors.run([&] {
              for (int64_t i = tasks[static_cast<size_t>(t)]; i < tasks[static_cast<size_t>(t + 1)]; ++i)
                for (int64_t x = 0; x < G; ++x)
                  finish_row(p, d, b, g * G + x, i, scale, mgs[static_cast<size_t>(x)], &*rs);
            });
        }
      }
      errors.rethrow();
    }
  }
}

Cost LshBackend::cost(const Shape& s) const {
  Cost c = exact_cost(s);
  const double R = static_cast<double>(opt_.rounds);
  const double keys = static_cast<double>(std::min<int64_t>(2 * opt_.chunk, s.n_k));
  c.flops = static_cast<double>(s.batch) * s.heads *
            (R * (s.n_q + s.n_k) * s.d * static_cast<double>(opt_.buckets) +
             R * static_cast<double>(s.n_q) * keys * 2.0 * (s.d + s.d_v));
  // rest=mean, as forward() does it (a key adds 3d + d_v: k, k·k + kk, v), per (batch, kv
  // head): the block sums (one pass over the keys), the running sums inside the prefixes' blocks
  // (causal: about one more pass, tasks start at block starts when the rows' prefixes advance
  // with the rows; otherwise one prefix, its last partial block once per task of kRestTaskRows
  // rows) and per prefix its reductions (4d); per query head and row q·k̄ and |q|² (4d)
  // and the folded-in term (5d_v). Key lengths are not in the Shape: counted as n_k.
  if (opt_.rest == LshRest::Mean) {
    const double per_key = 3.0 * s.d + s.d_v, per_prefix = 4.0 * s.d;
    const double tasks = std::ceil(static_cast<double>(s.n_q) / static_cast<double>(adaptive::kRestTaskRows));
    const double kv = s.causal ? 2.0 * static_cast<double>(s.n_k) * per_key +
                                     static_cast<double>(std::min(s.n_q, s.n_k)) * per_prefix
                               : static_cast<double>(s.n_k) * per_key +
                                     tasks * (static_cast<double>(s.n_k % adaptive::kRestBlock) * per_key + per_prefix);
    c.flops += static_cast<double>(s.batch) * s.kv_heads * kv +
               static_cast<double>(s.batch) * s.heads * s.n_q * (4.0 * s.d + 5.0 * s.d_v);
  }
  return c;
}

void LshBackend::weights(const Problem& caller, int64_t b, int64_t h, float* w) const {
  const BlasRows blas_rows(caller);  // row strides BLAS accepts (blas_rows.hpp)
  const Problem& p = blas_rows.problem();
  const Shape d = check_weights(p, b, h, w);
  std::vector<adaptive::LshRound> rounds;
  {
    SingleThreadedBlas blas;
    adaptive::lsh_plan(p, d, opt_, adaptive::lsh_rotations(opt_, d.kv_heads, d.d), b, h, rounds);
  }
  // With the duplicate correction the merged rounds are the fp64 softmax over the union of the
  // keys the row sees in any round; rest=mean adds its term spread evenly over the visible keys.
  std::fill(w, w + d.n_q * d.n_k, 0.0f);
  std::vector<double> s;
  std::vector<int64_t> keys;
  // the rest term's prefix sums by the definition forward() uses (lsh_rest.hpp); one thread:
  // O(n_k·d) against this function's O(n_q·n_k·d)
  adaptive::RestBlocks blocks(d.d, d.d_v);
  if (opt_.rest == LshRest::Mean) {
    blocks.reset(p, b, h / d.group(), static_cast<int64_t>(rounds[0].key_rank.size()));
    for (int64_t u = 0; u < blocks.full_blocks(); ++u) blocks.sum_block(u);
    blocks.accumulate();
  }
  adaptive::RestSums rs(blocks);
  const double scale = p.effective_scale();
  for (int64_t i = 0; i < d.n_q; ++i) {
    const int64_t ke = std::min(p.key_end(b, i), static_cast<int64_t>(rounds[0].key_rank.size()));
    keys.clear();
    for (int64_t j = 0; j < ke; ++j)
      for (const adaptive::LshRound& lr : rounds)
        if (lr.sees(i, j)) {
          keys.push_back(j);
          break;
        }
    const int64_t rest = opt_.rest == LshRest::Mean ? ke - static_cast<int64_t>(keys.size()) : 0;
    if (keys.empty() && rest <= 0) continue;
    numerics::score_row_fp64(p, d, b, h, i, ke, s);
    float* wr = w + i * d.n_k;
    double m = -std::numeric_limits<double>::infinity(), sum = 0;
    bool nan = false;
    for (int64_t j : keys) {
      nan |= std::isnan(s[static_cast<size_t>(j)]);
      m = std::max(m, s[static_cast<size_t>(j)]);
    }
    if (nan) {
      for (int64_t j = 0; j < ke; ++j) wr[j] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    double e_rest = 0;  // the rest term's mass relative to exp(m)
    if (rest > 0) {
      rs.advance(ke);
      const double L = rs.log_mass(p.q.row(b, h, i), scale, rest);
      if (keys.empty() || L > m) m = L;
      e_rest = std::exp(L - m);
    }
    for (int64_t j : keys) sum += std::exp(s[static_cast<size_t>(j)] - m);
    sum += e_rest;
    const double spread = e_rest / static_cast<double>(std::max<int64_t>(ke, 1)) / sum;
    if (rest > 0)
      for (int64_t j = 0; j < ke; ++j) wr[j] = static_cast<float>(spread);
    for (int64_t j : keys) wr[j] = static_cast<float>(std::exp(s[static_cast<size_t>(j)] - m) / sum + spread);
  }
}

BackendInfo lsh_info() {
  return {"lsh",
          "Reformer-style LSH attention: per round, queries and keys sorted by angular-LSH bucket, each query chunk sees 2*chunk keys",
          lsh_params(),
          kCaps,
          [](const Params& pr) {
            const std::string& rest = pr.get_string("rest");
            if (rest != "mean" && rest != "none") detail::fail("lsh: rest=", rest, "; expected mean or none");
            return std::make_unique<LshBackend>(LshOptions{pr.get_int("buckets"), pr.get_int("rounds"), pr.get_int("chunk"),
                                                           pr.get_int("seed"),
                                                           rest == "mean" ? LshRest::Mean : LshRest::None});
          }};
}

}  // namespace attnkit
