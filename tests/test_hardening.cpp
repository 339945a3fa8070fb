// Robustness every backend of the build must have: extreme and non-finite inputs, tiny sizes,
// invalid problems. (Masks, shapes, determinism, thread-safety and capabilities are checked by
// the conformance suite, test_conformance.cpp.)
#include <catch2/catch.hpp>
#include <cmath>

#include "support.hpp"

using namespace attnkit;
using attnkit::test::Owned;

namespace {

// Every backend of the build with its default parameters (reference excluded where it is the oracle).
std::vector<std::unique_ptr<Backend>> all_backends() {
  std::vector<std::unique_ptr<Backend>> v;
  for (const BackendInfo& info : list_backends()) v.push_back(make_backend(info.name));
  return v;
}

}  // namespace

TEST_CASE("logits up to 1e4 give finite outputs", "[hardening]") {
  for (const auto& b : all_backends()) {
    INFO(b->spec());
    Owned o(1, 2, 2, 64, 64, 16, 16, 3, 25.0f);  // |s q.k| up to ~1e4
    o.q.data()[0] = 300;
    o.k.data()[0] = 300;  // s * q.k >= 2e4 for that pair
    o.q.data()[16] = -300;
    if (b->spec().rfind("performer", 0) == 0) {
      // FAVOR+ features of such inputs span more than float32 holds: a clear error naming the row
      // (attnkit/kernelized.hpp, "Range"), never zeros or a ratio of subnormals.
      CHECK_THROWS_WITH(b->forward(o.p), Catch::Contains("query row") && Catch::Contains("underflowed"));
      continue;
    }
    b->forward(o.p);
    for (int64_t i = 0; i < o.out.numel(); ++i) REQUIRE(std::isfinite(o.out.data()[i]));
  }
}

TEST_CASE("NaN in one query row: that row is NaN, the run does not crash", "[hardening]") {
  for (const auto& b : all_backends()) {
    INFO(b->spec());
    Owned o(1, 1, 1, 50, 50, 8, 8, 4);
    o.q.view().at(0, 0, 7, 3) = NAN;
    b->forward(o.p);
    bool row_nan = false;
    int64_t finite_rows = 0;
    for (int64_t i = 0; i < 50; ++i) {
      bool fin = true;
      for (int64_t c = 0; c < 8; ++c) fin &= std::isfinite(o.out.view().at(0, 0, i, c));
      if (i == 7) row_nan = !fin;
      finite_rows += fin;
    }
    // uniform never reads q: a NaN query changes nothing there
    if (b->spec() == "uniform") {
      CHECK(finite_rows == 50);
      continue;
    }
    CHECK(row_nan);
    // Rows that never mix with the NaN query stay finite; clustered attention mixes a query with
    // the other members of its cluster (their centroid), so there only most rows are finite.
    // nystrom mixes every query into every row (its segment's landmark enters A, and pinv(A)
    // enters every row): all rows are NaN there, which is the correct propagation.
    if (b->spec().rfind("clustered", 0) == 0) CHECK(finite_rows >= 25);
    else if (b->spec().rfind("nystrom", 0) == 0) CHECK(finite_rows == 0);
    else CHECK(finite_rows == 49);
  }
}

TEST_CASE("n = 1 and d = 1 work for every backend", "[hardening]") {
  for (const auto& b : all_backends()) {
    INFO(b->spec());
    Owned one(1, 1, 1, 1, 1, 1, 1, 8);
    b->forward(one.p);
    // one key: the output is that key's value exactly (softmax of a single score is 1) — except
    // linformer, whose weights over the keys are softmax(·)·E with a random E: they do not sum
    // to 1 (out = v · Σ_r p_r E_r1), see include/attnkit/lowrank.hpp.
    if (b->spec().rfind("linformer", 0) != 0) CHECK(one.out.data()[0] == Approx(one.v.data()[0]).epsilon(1e-5));
    Owned o(1, 2, 2, 33, 33, 1, 1, 9);
    b->forward(o.p);
    for (int64_t i = 0; i < o.out.numel(); ++i) REQUIRE(std::isfinite(o.out.data()[i]));
  }
}

TEST_CASE("every backend rejects invalid problems with attnkit::Error", "[hardening]") {
  for (const auto& b : all_backends()) {
    INFO(b->spec());
    Owned o(1, 2, 2, 10, 10, 4, 4, 1);
    o.p.k.shape[3] = 5;
    CHECK_THROWS_AS(b->forward(o.p), Error);
    Owned x(1, 2, 2, 10, 10, 4, 4, 1);
    x.p.scale = 0.0f;
    CHECK_THROWS_AS(b->forward(x.p), Error);
    Owned y(1, 2, 2, 10, 10, 4, 4, 1);
    y.p.out.data = const_cast<float*>(y.p.q.data);
    CHECK_THROWS_WITH(b->forward(y.p), Catch::Contains("overlaps q"));
  }
}

TEST_CASE("error_bound_rows and weights_rows equal the chosen rows of error_bound and weights", "[hardening]") {
  std::vector<std::unique_ptr<Backend>> bs = all_backends();
  // settings whose bound and rows are not trivial at n = 64 (the defaults' windows cover every key)
  for (const char* spec : {"local:window=16,global=2", "local:window=9,dilation=2", "clustered:clusters=4,topk=3"}) {
    try {
      bs.push_back(make_backend(spec));
    } catch (const Error&) {  // family not built
    }
  }
  const std::vector<int64_t> rows = {5, 0, 63, 17, 17};
  for (const auto& b : bs) {
    const Capabilities c = b->capabilities();
    for (bool causal : {false, true}) {
      if (causal && !c.causal) continue;
      INFO(b->spec() << " causal=" << causal);
      Owned o(2, 4, c.gqa ? 2 : 4, 64, 64, 16, 8, 31, 1.5f);
      o.p.mask.causal = causal;
      if (c.key_lengths) o.p.mask.key_lengths = {64, 40};
      const int64_t H = 4, m = static_cast<int64_t>(rows.size());
      const std::optional<ErrorBound> full = b->error_bound(o.p), part = b->error_bound_rows(o.p, rows);
      REQUIRE(full.has_value() == part.has_value());
      if (full) {
        REQUIRE(part->out_l2.size() == static_cast<size_t>(2 * H * m));
        REQUIRE(part->prob_l1.size() == (full->prob_l1.empty() ? 0 : part->out_l2.size()));
        for (int64_t bh = 0; bh < 2 * H; ++bh)
          for (int64_t t = 0; t < m; ++t) {
            const size_t from = static_cast<size_t>(bh * 64 + rows[static_cast<size_t>(t)]), to = static_cast<size_t>(bh * m + t);
            CHECK(part->out_l2[to] == Approx(full->out_l2[from]).epsilon(1e-12).margin(1e-300));
            if (!part->prob_l1.empty()) CHECK(part->prob_l1[to] == Approx(full->prob_l1[from]).epsilon(1e-12).margin(1e-300));
          }
      }
      CHECK_THROWS_AS(b->error_bound_rows(o.p, {64}), Error);
      if (!c.weights) {
        std::vector<float> w(static_cast<size_t>(m * 64));
        CHECK_THROWS_AS(b->weights_rows(o.p, 0, 0, rows, w.data()), Error);
        continue;
      }
      for (int64_t bb : {0, 1})
        for (int64_t h : {0, 3}) {
          std::vector<float> all(64 * 64), sel(static_cast<size_t>(m * 64));
          b->weights(o.p, bb, h, all.data());
          b->weights_rows(o.p, bb, h, rows, sel.data());
          for (int64_t t = 0; t < m; ++t)
            for (int64_t j = 0; j < 64; ++j)
              REQUIRE(sel[static_cast<size_t>(t * 64 + j)] ==
                      Approx(all[static_cast<size_t>(rows[static_cast<size_t>(t)] * 64 + j)]).epsilon(1e-5).margin(1e-7));
        }
      std::vector<float> w(64);
      CHECK_THROWS_AS(b->weights_rows(o.p, 0, 0, {-1}, w.data()), Error);
    }
  }
}
