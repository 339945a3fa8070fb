#include "lsh_plan.hpp"

#include "attnkit/error.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace attnkit {

std::vector<double> lsh_rotation(int64_t seed, int64_t round, int64_t kv_head, int64_t d, int64_t buckets) {
  // splitmix64 (Steele et al.), state seeded from the three numbers with distinct odd constants.
  uint64_t state = static_cast<uint64_t>(seed) * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(round + 1) * 0xBF58476D1CE4E5B9ull ^
                   static_cast<uint64_t>(kv_head + 1) * 0x94D049BB133111EBull;
  auto next = [&state] {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  const int64_t n = d * (buckets / 2);
  std::vector<double> out(static_cast<size_t>(n));
  const double two_pi = 6.283185307179586476925286766559;
  for (int64_t x = 0; x < n; x += 2) {
    const double u1 = (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = static_cast<double>(next() >> 11) * 0x1.0p-53;          // [0, 1)
    const double r = std::sqrt(-2.0 * std::log(u1));
    out[static_cast<size_t>(x)] = r * std::cos(two_pi * u2);
    if (x + 1 < n) out[static_cast<size_t>(x + 1)] = r * std::sin(two_pi * u2);
  }
  return out;
}

namespace adaptive {

std::vector<std::vector<float>> lsh_rotations(const LshOptions& o, int64_t kv_heads, int64_t d) {
  std::vector<std::vector<float>> rot;
  for (int64_t r = 0; r < o.rounds; ++r)
    for (int64_t g = 0; g < kv_heads; ++g) {
      const std::vector<double> x = lsh_rotation(o.seed, r, g, d, o.buckets);
      rot.emplace_back(x.begin(), x.end());
    }
  return rot;
}

namespace {

// bucket[x] = argmax over [row·R, −row·R] (first maximum; NaN never wins) for rows x of `src`.
void hash_rows(const float* src, int64_t stride, int64_t n, int64_t d, const std::vector<float>& rot, int64_t half,
               std::vector<float>& proj, std::vector<int64_t>& bucket) {
  bucket.assign(static_cast<size_t>(n), 0);
  if (n == 0) return;
  proj.resize(static_cast<size_t>(n * half));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n), static_cast<int>(half),
              static_cast<int>(d), 1.0f, src, static_cast<int>(stride), rot.data(), static_cast<int>(half), 0.0f,
              proj.data(), static_cast<int>(half));
  for (int64_t x = 0; x < n; ++x) {
    const float* y = proj.data() + x * half;
    float best = y[0];
    int64_t arg = 0;
    for (int64_t c = 1; c < half; ++c)
      if (y[c] > best) best = y[c], arg = c;
    for (int64_t c = 0; c < half; ++c)
      if (-y[c] > best) best = -y[c], arg = half + c;
    bucket[static_cast<size_t>(x)] = arg;
  }
}

// Rows sorted by (bucket, row): a counting sort, stable, so rows of one bucket keep their order.
void bucket_order(const std::vector<int64_t>& bucket, int64_t buckets, std::vector<int64_t>& count,
                  std::vector<int64_t>& order) {
  count.assign(static_cast<size_t>(buckets) + 1, 0);
  for (int64_t x : bucket) ++count[static_cast<size_t>(x) + 1];
  for (int64_t c = 0; c < buckets; ++c) count[static_cast<size_t>(c) + 1] += count[static_cast<size_t>(c)];
  order.resize(bucket.size());
  for (size_t x = 0; x < bucket.size(); ++x) order[static_cast<size_t>(count[static_cast<size_t>(bucket[x])]++)] = static_cast<int64_t>(x);
}

}  // namespace

void lsh_check_sizes(const Shape& d) {
  if (std::max(d.n_q, d.n_k) > std::numeric_limits<int32_t>::max())
    detail::fail("lsh: n_q=", d.n_q, " n_k=", d.n_k, "; expected at most 2^31 - 1 (int32 ranks)");
}

void lsh_plan(const Problem& p, const Shape& d, const LshOptions& o, const std::vector<std::vector<float>>& rot,
              int64_t b, int64_t h, std::vector<LshRound>& rounds) {
  lsh_check_sizes(d);
  rounds.resize(static_cast<size_t>(o.rounds));
  for (int64_t r = 0; r < o.rounds; ++r) lsh_plan_round(p, d, o, rot, b, h, r, rounds[static_cast<size_t>(r)]);
}

void lsh_plan_round(const Problem& p, const Shape& d, const LshOptions& o, const std::vector<std::vector<float>>& rot,
                    int64_t b, int64_t h, int64_t r, LshRound& lr) {
  const int64_t g = h / d.group(), half = o.buckets / 2, C = o.chunk;
  const int64_t limit = p.mask.key_lengths.empty() ? d.n_k : p.mask.key_lengths[static_cast<size_t>(b)];
  const int64_t off = d.n_k - d.n_q;
  std::vector<float> proj;
  std::vector<int64_t> qb, kb, count;
  {
    const std::vector<float>& R = rot[static_cast<size_t>(r * d.kv_heads + g)];
    hash_rows(p.q.row(b, h, 0), p.q.stride[2], d.n_q, d.d, R, half, proj, qb);
    hash_rows(p.k.row(b, g, 0), p.k.stride[2], limit, d.d, R, half, proj, kb);
    bucket_order(qb, o.buckets, count, lr.q_order);
    bucket_order(kb, o.buckets, count, lr.k_order);
    lr.key_rank.resize(static_cast<size_t>(limit));
    for (int64_t x = 0; x < limit; ++x)
      lr.key_rank[static_cast<size_t>(lr.k_order[static_cast<size_t>(x)])] = static_cast<int32_t>(x);
    const int64_t chunks = (d.n_q + C - 1) / C;
    lr.lo.resize(static_cast<size_t>(chunks));
    lr.hi.resize(static_cast<size_t>(chunks));
    // Rank of a query among the sorted keys: the keys before it in (bucket, position) order;
    // `or_equal` also counts the key at the query's own position (a query sees its own position).
    auto rank = [&](int64_t i, bool or_equal) {
      const int64_t bq = qb[static_cast<size_t>(i)], pos = i + off;
      const auto it = std::partition_point(lr.k_order.begin(), lr.k_order.end(), [&](int64_t j) {
        const int64_t bk = kb[static_cast<size_t>(j)];
        return bk < bq || (bk == bq && (or_equal ? j <= pos : j < pos));
      });
      return static_cast<int64_t>(it - lr.k_order.begin());
    };
    const int64_t width = std::min(2 * C, limit);
    lr.query_chunk.resize(static_cast<size_t>(d.n_q));
    for (int64_t x = 0; x < d.n_q; ++x)
      lr.query_chunk[static_cast<size_t>(lr.q_order[static_cast<size_t>(x)])] = static_cast<int32_t>(x / C);
    for (int64_t c = 0; c < chunks; ++c) {
      // s0: keys strictly before the chunk's first query; s1: keys up to its last query.
      const int64_t first = lr.q_order[static_cast<size_t>(c * C)];
      const int64_t last = lr.q_order[static_cast<size_t>(std::min(d.n_q, c * C + C) - 1)];
      const int64_t s0 = rank(first, false), s1 = rank(last, true);
      // Causal: the 2C keys that end at the last query (later keys of its bucket are all in the
      // chunk's future). Otherwise: they end at the last query or C keys after the first, whichever
      // is later. With Q = K both are Reformer's "own chunk and the previous one".
      int64_t hi = p.mask.causal ? s1 : std::max(s1, s0 + C);
      hi = std::clamp(hi, width, limit);  // shifted inside the key order: always min(2C, keys) keys
      lr.lo[static_cast<size_t>(c)] = hi - width;
      lr.hi[static_cast<size_t>(c)] = hi;
    }
  }
}

}  // namespace adaptive

}  // namespace attnkit
