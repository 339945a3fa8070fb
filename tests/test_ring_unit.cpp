// Ring attention's single-process parts: the layouts, the per-step global mask and the stable
// merge. The MPI runs themselves are tests/test_ring.sh.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../src/ring/global_mask.hpp"
#include "../src/ring/merge.hpp"
#include "attnkit/error.hpp"
#include "attnkit/ring.hpp"

using namespace attnkit;

TEST_CASE("ring layouts cover every position once, in order per rank", "[ring]") {
  for (RingLayout layout : {RingLayout::Contiguous, RingLayout::Zigzag})
    for (int P : {1, 2, 3, 4, 7})
      for (int64_t n : {int64_t{14}, int64_t{15}, int64_t{1001}}) {
        std::vector<int> owner(static_cast<size_t>(n), -1);
        int64_t lo = n, hi = 0;
        for (int r = 0; r < P; ++r) {
          const RingRows rows = ring_rows(n, r, P, layout);
          lo = std::min(lo, rows.count());
          hi = std::max(hi, rows.count());
          for (int64_t i = 0; i < rows.count(); ++i) {
            const int64_t pos = rows.position(i);
            REQUIRE(pos >= 0);
            REQUIRE(pos < n);
            CHECK(owner[size_t(pos)] == -1);
            owner[size_t(pos)] = r;
            if (i) CHECK(rows.position(i - 1) < pos);
          }
        }
        for (int o : owner) CHECK(o >= 0);
        CHECK(hi - lo <= 2);  // at most one row more per chunk
      }
  const RingRows z = ring_rows(16, 1, 4, RingLayout::Zigzag);  // chunks 1 and 6 of 8
  CHECK(z.begin[0] == 2);
  CHECK(z.end[0] == 4);
  CHECK(z.begin[1] == 12);
  CHECK(z.end[1] == 14);
  CHECK(parse_ring_layout("zigzag") == RingLayout::Zigzag);
  CHECK_THROWS_WITH(parse_ring_layout("striped"), Catch::Contains("expected contiguous or zigzag"));
  CHECK_THROWS_WITH(ring_rows(7, 0, 4, RingLayout::Zigzag), Catch::Contains("expected n >= 8"));
  CHECK_THROWS_WITH(ring_rows(10, 4, 4, RingLayout::Contiguous), Catch::Contains("rank=4; expected 0..3"));
  CHECK_THROWS_WITH(ring_rows(3, 0, 4, RingLayout::Contiguous), Catch::Contains("expected n >= 4"));
}

TEST_CASE("zigzag gives every rank the same causal work, contiguous does not", "[ring]") {
  const int64_t n = 4096;
  for (int P : {2, 4, 8}) {
    // Causal (query, key) pairs per rank: sum over its queries of (position + 1).
    const auto work = [&](RingLayout layout) {
      std::vector<double> w;
      for (int r = 0; r < P; ++r) {
        const RingRows rows = ring_rows(n, r, P, layout);
        double s = 0;
        for (int64_t i = 0; i < rows.count(); ++i) s += double(rows.position(i) + 1);
        w.push_back(s);
      }
      return w;
    };
    const auto z = work(RingLayout::Zigzag), c = work(RingLayout::Contiguous);
    INFO("P " << P);
    CHECK(*std::max_element(z.begin(), z.end()) / *std::min_element(z.begin(), z.end()) < 1.001);
    CHECK(c.back() / c.front() > 2 * P - 1.5);  // the last rank: (2P−1)× the first one's work
  }
}

TEST_CASE("the ring step mask is the global causal + padding mask in local indices", "[ring]") {
  const int64_t n = 37;
  for (RingLayout layout : {RingLayout::Contiguous, RingLayout::Zigzag})
    for (int P : {2, 3})
      for (int qr = 0; qr < P; ++qr)
        for (int kr = 0; kr < P; ++kr)
          for (bool causal : {false, true})
            for (int64_t limit : {n, int64_t{20}, int64_t{0}}) {
              const RingRows q = ring_rows(n, qr, P, layout), k = ring_rows(n, kr, P, layout);
              const ring::GlobalMask mask(q, k, causal, limit);
              const int64_t nq = q.count(), nk = k.count();
              std::vector<float> S(size_t(nq * nk), 1.0f), St(size_t(nq * nk), 1.0f);
              mask.apply(0, nq, 0, nk, S.data(), nk);
              mask.apply_transposed(0, nq, 0, nk, St.data(), nq);
              for (int64_t i = 0; i < nq; ++i)
                for (int64_t j = 0; j < nk; ++j) {
                  const bool sees = (!causal || k.position(j) <= q.position(i)) && k.position(j) < limit;
                  INFO("layout " << ring_layout_name(layout) << " P " << P << " q rank " << qr << " k rank " << kr
                                 << " causal " << causal << " limit " << limit << " i " << i << " j " << j);
                  REQUIRE((S[size_t(i * nk + j)] == 1.0f) == sees);
                  REQUIRE((St[size_t(j * nq + i)] == 1.0f) == sees);
                  REQUIRE((j < mask.end(i)) == sees);
                }
            }
}

TEST_CASE("merging (out, lse) pairs is exact softmax over the union, even 1e4 apart", "[ring]") {
  const double inf = std::numeric_limits<double>::infinity();
  // Two blocks of one key each: value a with score sa, value b with score sb.
  for (double sa : {0.0, 3.0, -5e3, 5e3})
    for (double sb : {0.0, -2.0, 5e3, -5e3}) {
      float out = 0.0f;
      double lse = -inf;
      const float a = 1.5f, b = -0.5f;
      ring::merge_row(&out, lse, &a, float(sa), 1.0f, 1);
      CHECK(out == a);
      CHECK(lse == sa);
      ring::merge_row(&out, lse, &b, float(sb), 1.0f, 1);
      const double m = std::max(sa, sb);
      const double wa = std::exp(sa - m), wb = std::exp(sb - m);
      INFO("sa " << sa << " sb " << sb);
      CHECK(std::isfinite(out));
      CHECK(std::fabs(out - (wa * a + wb * b) / (wa + wb)) <= 1e-6);
      CHECK(std::fabs(lse - (m + std::log(wa + wb))) <= 1e-9 * std::max(1.0, std::fabs(m)));
    }
  // A block with no visible key (sum 0) changes nothing; a NaN sum propagates.
  float out = 2.0f, z = 9.0f;
  double lse = 1.0;
  ring::merge_row(&out, lse, &z, 0.0f, 0.0f, 1);
  CHECK(out == 2.0f);
  CHECK(lse == 1.0);
  ring::merge_row(&out, lse, &z, 0.0f, std::numeric_limits<float>::quiet_NaN(), 1);
  CHECK(std::isnan(out));
  CHECK(std::isnan(lse));
}
