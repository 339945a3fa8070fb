// The adaptive family (topk, pruned, lsh) against independent fp64 implementations of the same
// algorithms written here from the spec in attnkit/adaptive.hpp (same seed for lsh: the test
// uses the documented lsh_rotation() stream and redoes hashing, sorting, chunking and merging).
#include <catch2/catch.hpp>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <numeric>

#include "../src/adaptive/lsh_rest.hpp"
#include "../src/adaptive/pruned_plan.hpp"
#include "attnkit/adaptive.hpp"
#include "support.hpp"

using namespace attnkit;
using attnkit::test::Owned;

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

double score(const Problem& p, int64_t b, int64_t h, int64_t g, int64_t i, int64_t j) {
  const float* q = p.q.row(b, h, i);
  const float* k = p.k.row(b, g, j);
  double s = 0;
  for (int64_t c = 0; c < p.q.shape[3]; ++c) s += static_cast<double>(q[c]) * k[c];
  return s * p.effective_scale();
}

// An fp64 attention "plan": per (b, h, i) the probability row over keys (dense n_k).
using Rows = std::vector<std::vector<double>>;  // index (b * H + h) * n_q + i

// softmax over the keys in `set` (visible ones) of row i, dense.
std::vector<double> softmax_over(const Problem& p, int64_t b, int64_t h, int64_t i, const std::vector<int64_t>& set) {
  const Shape d = p.dims();
  const int64_t g = h / d.group();
  std::vector<double> w(static_cast<size_t>(d.n_k), 0.0);
  if (set.empty()) return w;
  double m = kNegInf, sum = 0;
  for (int64_t j : set) m = std::max(m, score(p, b, h, g, i, j));
  for (int64_t j : set) sum += (w[static_cast<size_t>(j)] = std::exp(score(p, b, h, g, i, j) - m));
  for (double& x : w) x /= sum;
  return w;
}

// out = W V from the oracle's rows; compares with the backend's output and weights().
void check_against(const Backend& be, const Problem& p, const Rows& rows, double tol) {
  const Shape d = p.dims();
  be.forward(p);
  double worst = 0, worst_w = 0;
  std::vector<float> w(static_cast<size_t>(d.n_q * d.n_k));
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.heads; ++h) {
      const int64_t g = h / d.group();
      be.weights(p, b, h, w.data());
      for (int64_t i = 0; i < d.n_q; ++i) {
        const std::vector<double>& r = rows[static_cast<size_t>((b * d.heads + h) * d.n_q + i)];
        for (int64_t c = 0; c < d.d_v; ++c) {
          double o = 0;
          for (int64_t j = 0; j < d.n_k; ++j) o += r[static_cast<size_t>(j)] * p.v.row(b, g, j)[c];
          worst = std::max(worst, std::abs(o - p.out.row(b, h, i)[c]));
        }
        for (int64_t j = 0; j < d.n_k; ++j)
          worst_w = std::max(worst_w, std::abs(r[static_cast<size_t>(j)] - w[static_cast<size_t>(i * d.n_k + j)]));
      }
    }
  INFO(be.spec() << ": max |out - oracle| " << worst << ", max |weights - oracle| " << worst_w);
  CHECK(worst <= tol);
  CHECK(worst_w <= 1e-6);
}

// ---- topk oracle: sort every visible key by (score desc, index asc), keep the first k.
Rows topk_oracle(const Problem& p, int64_t k) {
  const Shape d = p.dims();
  Rows rows;
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.heads; ++h)
      for (int64_t i = 0; i < d.n_q; ++i) {
        const int64_t ke = p.key_end(b, i), g = h / d.group();
        std::vector<int64_t> js(static_cast<size_t>(ke));
        std::iota(js.begin(), js.end(), int64_t{0});
        std::stable_sort(js.begin(), js.end(),
                         [&](int64_t x, int64_t y) { return score(p, b, h, g, i, x) > score(p, b, h, g, i, y); });
        js.resize(static_cast<size_t>(std::min<int64_t>(k, ke)));
        rows.push_back(softmax_over(p, b, h, i, js));
      }
  return rows;
}

// ---- pruned oracle (fp64), from the spec in adaptive.hpp.
Rows pruned_oracle(const Problem& p, const PrunedOptions& o) {
  const Shape d = p.dims();
  const int64_t B = o.block, off = d.n_k - d.n_q, budget = (o.keep + B - 1) / B;
  Rows rows(static_cast<size_t>(d.batch * d.heads * d.n_q));
  for (int64_t b = 0; b < d.batch; ++b) {
    const int64_t limit = p.mask.key_lengths.empty() ? d.n_k : p.mask.key_lengths[static_cast<size_t>(b)];
    for (int64_t h = 0; h < d.heads; ++h) {
      const int64_t g = h / d.group();
      for (int64_t i0 = 0; i0 < d.n_q; i0 += B) {
        const int64_t i1 = std::min(d.n_q, i0 + B), ke = p.key_end(b, i1 - 1), cand = (ke + B - 1) / B;
        std::vector<char> keep(static_cast<size_t>(cand), 0);
        auto mark = [&](int64_t j0, int64_t j1) {
          for (int64_t j = std::max<int64_t>(0, j0); j < std::min(j1, ke); ++j) keep[static_cast<size_t>(j / B)] = 1;
        };
        mark(0, o.sinks);
        if (o.window > 0) {
          if (p.mask.causal)
            mark(i1 - 1 + off - o.window + 1, i1 + off);
          else {
            const int64_t pm = (i0 + i1 - 1) / 2 + off;
            mark(pm - o.window / 2, pm - o.window / 2 + o.window);
          }
        }
        int64_t nf = std::count(keep.begin(), keep.end(), 1);
        std::vector<std::pair<double, int64_t>> sc;
        for (int64_t u = 0; u < cand; ++u) {
          if (keep[static_cast<size_t>(u)]) continue;
          const int64_t j0 = u * B, j1 = std::min(limit, j0 + B);
          double s = kNegInf;
          if (o.score == TileScore::Mean) {
            s = 0;
            for (int64_t c = 0; c < d.d; ++c) {
              double qm = 0, km = 0;
              for (int64_t i = i0; i < i1; ++i) qm += p.q.row(b, h, i)[c];
              for (int64_t j = j0; j < j1; ++j) km += p.k.row(b, g, j)[c];
              s += qm / (i1 - i0) * km / (j1 - j0);
            }
          } else {
            for (int64_t i = i0; i < i1; ++i) {
              double t = 0;
              for (int64_t c = 0; c < d.d; ++c) {
                double mn = 1e300, mx = -1e300;
                for (int64_t j = j0; j < j1; ++j) {
                  mn = std::min<double>(mn, p.k.row(b, g, j)[c]);
                  mx = std::max<double>(mx, p.k.row(b, g, j)[c]);
                }
                const double qc = p.q.row(b, h, i)[c];
                t += std::max(qc * mn, qc * mx);
              }
              s = std::max(s, t);
            }
          }
          sc.push_back({-s, u});  // ascending: best score first, then lower index
        }
        std::sort(sc.begin(), sc.end());
        for (int64_t x = 0; x < std::min<int64_t>(budget, cand) - nf && x < static_cast<int64_t>(sc.size()); ++x)
          keep[static_cast<size_t>(sc[static_cast<size_t>(x)].second)] = 1;
        for (int64_t i = i0; i < i1; ++i) {
          std::vector<int64_t> set;
          for (int64_t j = 0; j < p.key_end(b, i); ++j)
            if (keep[static_cast<size_t>(j / B)]) set.push_back(j);
          rows[static_cast<size_t>((b * d.heads + h) * d.n_q + i)] = softmax_over(p, b, h, i, set);
        }
      }
    }
  }
  return rows;
}

// lsh's rest=mean row: the softmax terms of the seen keys plus, for the m = key_end − |set|
// unseen visible keys, the mass m·exp(scale·q·k̄ + ½·scale²·|q|²·τ²) carried by v̄, written as a
// probability row (the rest term spread evenly over the visible keys [0, key_end)).
std::vector<double> lsh_rest_row(const Problem& p, int64_t b, int64_t h, int64_t i, const std::vector<int64_t>& set) {
  const Shape d = p.dims();
  const int64_t g = h / d.group(), ke = p.key_end(b, i), m = ke - static_cast<int64_t>(set.size());
  if (m <= 0) return softmax_over(p, b, h, i, set);
  std::vector<double> kbar(static_cast<size_t>(d.d), 0.0);
  double kk = 0;
  for (int64_t j = 0; j < ke; ++j)
    for (int64_t c = 0; c < d.d; ++c) {
      kbar[static_cast<size_t>(c)] += p.k.row(b, g, j)[c] / static_cast<double>(ke);
      kk += static_cast<double>(p.k.row(b, g, j)[c]) * p.k.row(b, g, j)[c] / static_cast<double>(ke);
    }
  double qk = 0, qq = 0, kb2 = 0;
  for (int64_t c = 0; c < d.d; ++c) {
    const double x = p.q.row(b, h, i)[c];
    qk += x * kbar[static_cast<size_t>(c)];
    qq += x * x;
    kb2 += kbar[static_cast<size_t>(c)] * kbar[static_cast<size_t>(c)];
  }
  const double s = p.effective_scale(), tau2 = std::max(0.0, kk - kb2) / static_cast<double>(d.d);
  const double L = s * qk + 0.5 * s * s * qq * tau2 + std::log(static_cast<double>(m));
  double top = L;
  for (int64_t j : set) top = std::max(top, score(p, b, h, g, i, j));
  std::vector<double> w(static_cast<size_t>(d.n_k), 0.0);
  const double rest = std::exp(L - top);
  double sum = rest;
  for (int64_t j : set) sum += (w[static_cast<size_t>(j)] = std::exp(score(p, b, h, g, i, j) - top));
  for (int64_t j = 0; j < ke; ++j) w[static_cast<size_t>(j)] += rest / static_cast<double>(ke);
  for (double& x : w) x /= sum;
  return w;
}

// ---- lsh oracle (fp64 hashing with the documented rotations).
Rows lsh_oracle(const Problem& p, const LshOptions& o) {
  const Shape d = p.dims();
  const int64_t half = o.buckets / 2, C = o.chunk, off = d.n_k - d.n_q;
  Rows rows;
  for (int64_t b = 0; b < d.batch; ++b) {
    const int64_t limit = p.mask.key_lengths.empty() ? d.n_k : p.mask.key_lengths[static_cast<size_t>(b)];
    for (int64_t h = 0; h < d.heads; ++h) {
      const int64_t g = h / d.group();
      // per round: per query its key set
      std::vector<std::vector<std::vector<int64_t>>> sets(static_cast<size_t>(o.rounds));
      for (int64_t r = 0; r < o.rounds; ++r) {
        const std::vector<double> R = lsh_rotation(o.seed, r, g, d.d, o.buckets);
        auto bucket = [&](const float* x) {
          std::vector<double> y(static_cast<size_t>(2 * half));
          for (int64_t c = 0; c < half; ++c) {
            double s = 0;
            for (int64_t e = 0; e < d.d; ++e) s += x[e] * R[static_cast<size_t>(e * half + c)];
            y[static_cast<size_t>(c)] = s;
            y[static_cast<size_t>(half + c)] = -s;
          }
          return static_cast<int64_t>(std::max_element(y.begin(), y.end()) - y.begin());
        };
        std::vector<std::pair<int64_t, int64_t>> qs, ks;  // (bucket, position or row)
        for (int64_t i = 0; i < d.n_q; ++i) qs.push_back({bucket(p.q.row(b, h, i)), i});
        for (int64_t j = 0; j < limit; ++j) ks.push_back({bucket(p.k.row(b, g, j)), j});
        std::sort(qs.begin(), qs.end());
        std::sort(ks.begin(), ks.end());
        sets[static_cast<size_t>(r)].resize(static_cast<size_t>(d.n_q));
        for (int64_t c0 = 0; c0 < d.n_q; c0 += C) {
          const int64_t c1 = std::min(d.n_q, c0 + C) - 1;
          const std::pair<int64_t, int64_t> first{qs[static_cast<size_t>(c0)].first, qs[static_cast<size_t>(c0)].second + off};
          const std::pair<int64_t, int64_t> last{qs[static_cast<size_t>(c1)].first, qs[static_cast<size_t>(c1)].second + off};
          int64_t s0 = 0, s1 = 0;  // keys before the first query; keys up to the last one
          for (const auto& key : ks) s0 += key < first, s1 += key <= last;
          // the 2C keys ending at s1 (causal) or at max(s1, s0 + C), shifted inside [0, limit)
          int64_t hi = p.mask.causal ? s1 : std::max(s1, s0 + C);
          const int64_t width = std::min(2 * C, limit);
          hi = std::min(limit, std::max(hi, width));
          for (int64_t x = c0; x <= c1; ++x) {
            const int64_t i = qs[static_cast<size_t>(x)].second;
            for (int64_t y = hi - width; y < hi; ++y)
              if (ks[static_cast<size_t>(y)].second < p.key_end(b, i))
                sets[static_cast<size_t>(r)][static_cast<size_t>(i)].push_back(ks[static_cast<size_t>(y)].second);
          }
        }
      }
      // Reformer's rounds merged with the duplicate correction: the softmax over the union of
      // the keys a row sees in any round.
      for (int64_t i = 0; i < d.n_q; ++i) {
        std::vector<int64_t> all;
        for (int64_t r = 0; r < o.rounds; ++r)
          for (int64_t j : sets[static_cast<size_t>(r)][static_cast<size_t>(i)]) all.push_back(j);
        std::sort(all.begin(), all.end());
        all.erase(std::unique(all.begin(), all.end()), all.end());
        rows.push_back(o.rest == LshRest::Mean ? lsh_rest_row(p, b, h, i, all) : softmax_over(p, b, h, i, all));
      }
    }
  }
  return rows;
}

// Sets the OpenMP thread count for its lifetime (restored even when a check throws).
struct ThreadCount {
  int saved = omp_get_max_threads();
  explicit ThreadCount(int n) { omp_set_num_threads(n); }
  ~ThreadCount() { omp_set_num_threads(saved); }
};

// The problem variants every backend is checked on: plain, causal, padding, cross + GQA.
struct Variant {
  const char* name;
  int64_t B, H, Hkv, nq, nk;
  bool causal;
  std::vector<int32_t> lengths;
};

const std::vector<Variant>& variants() {
  static const std::vector<Variant> v = {
      {"self", 1, 2, 2, 150, 150, false, {}},
      {"causal", 1, 2, 2, 150, 150, true, {}},
      {"key_lengths + GQA", 2, 4, 2, 120, 120, false, {120, 77}},
      {"causal cross (n_q < n_k) + GQA + key_lengths", 2, 4, 2, 70, 160, true, {160, 101}},
      {"cross n_q > n_k", 1, 2, 1, 130, 90, false, {}},
  };
  return v;
}

}  // namespace

TEST_CASE("topk equals an fp64 top-k oracle (masks, GQA, cross)", "[adaptive][topk]") {
  for (const Variant& v : variants())
    for (int64_t k : {1, 17, 64}) {
      INFO(v.name << " k=" << k);
      Owned o(v.B, v.H, v.Hkv, v.nq, v.nk, 16, 8, 11 + k);
      o.p.mask.causal = v.causal;
      o.p.mask.key_lengths = v.lengths;
      check_against(TopkBackend({k}), o.p, topk_oracle(o.p, k), 2e-5);
    }
}

TEST_CASE("topk breaks ties by the lower key index; k >= n_k is exact attention", "[adaptive][topk]") {
  Owned o(1, 1, 1, 20, 300, 8, 8, 5);
  // Every key and query the same, with exactly representable products: every score ties exactly
  // whatever order the sgemm kernel sums in.
  for (int64_t j = 0; j < 300; ++j)
    for (int64_t c = 0; c < 8; ++c) o.k.view().at(0, 0, j, c) = 0.5f;
  for (int64_t i = 0; i < 20; ++i)
    for (int64_t c = 0; c < 8; ++c) o.q.view().at(0, 0, i, c) = 1.0f;
  TopkBackend tk({40});
  std::vector<float> w(20 * 300);
  tk.weights(o.p, 0, 0, w.data());
  for (int64_t i = 0; i < 20; ++i)
    for (int64_t j = 0; j < 300; ++j) REQUIRE((w[static_cast<size_t>(i * 300 + j)] > 0) == (j < 40));
  tk.forward(o.p);
  for (int64_t c = 0; c < 8; ++c) {  // mean of the first 40 values
    double m = 0;
    for (int64_t j = 0; j < 40; ++j) m += o.v.view().at(0, 0, j, c) / 40.0;
    CHECK(o.out.view().at(0, 0, 3, c) == Approx(m).margin(1e-5));
  }
  Owned e(1, 2, 1, 90, 300, 16, 16, 6);
  e.p.mask.causal = true;
  CHECK(attnkit::test::rel_error(TopkBackend({300}), e.p) < 1e-5);
}

TEST_CASE("topk and pruned: the error bound 2 eps max||v|| holds", "[adaptive]") {
  Owned o(1, 2, 2, 200, 200, 16, 16, 21);
  o.p.mask.causal = true;
  const Tensor ref = attnkit::test::reference_of(o.p);
  for (const char* spec : {"topk:k=20", "pruned:block=16,keep=48", "pruned:block=16,keep=48,score=bound"}) {
    const auto be = make_backend(spec);
    be->forward(o.p);
    const auto eb = be->error_bound(o.p);
    REQUIRE(eb);
    const std::vector<double> err = row_l2_errors(ConstView(o.p.out), ref.cview());
    double slack = -1, eps = 0;
    for (size_t r = 0; r < err.size(); ++r) {
      slack = std::max(slack, err[r] - eb->out_l2[r]);
      eps += eb->prob_l1[r] / 2 / err.size();
    }
    INFO(spec << " mean eps " << eps);
    CHECK(slack <= 1e-5);
    CHECK(eps > 0);  // the bound is not vacuous: mass was dropped
  }
}

TEST_CASE("pruned equals an fp64 tile-pruning oracle (both scores, masks, GQA, cross)", "[adaptive][pruned]") {
  for (const Variant& v : variants())
    for (TileScore s : {TileScore::Mean, TileScore::Bound})
      for (const PrunedOptions& po : {PrunedOptions{16, 48, 16, 16, s}, PrunedOptions{32, 70, 40, 0, s},
                                      PrunedOptions{16, 16, 0, 0, s}}) {
        INFO(v.name << " block=" << po.block << " keep=" << po.keep << " window=" << po.window
                    << " sinks=" << po.sinks << " score=" << (s == TileScore::Mean ? "mean" : "bound"));
        Owned o(v.B, v.H, v.Hkv, v.nq, v.nk, 16, 8, 31 + po.block);
        o.p.mask.causal = v.causal;
        o.p.mask.key_lengths = v.lengths;
        check_against(PrunedBackend(po), o.p, pruned_oracle(o.p, po), 2e-5);
      }
}

TEST_CASE("pruned keeping every tile is exact attention; cost counts the kept tiles", "[adaptive][pruned]") {
  Owned o(1, 2, 1, 200, 200, 32, 32, 41);
  o.p.mask.causal = true;
  CHECK(attnkit::test::rel_error(PrunedBackend({64, 256, 64, 64, TileScore::Mean}), o.p) < 1e-5);
  // n = 4096, keep 1024, block 64: 16 of 64 key tiles per query tile (non-causal)
  const Shape s{1, 4, 4, 4096, 4096, 64, 64, false};
  const double attn = PrunedBackend({}).cost(s).flops, full = exact_cost(s).flops;
  CHECK(attn >= full / 4);
  CHECK(attn <= full / 4 * 1.05);  // + the importance scores
}

TEST_CASE("pruned: the error bound holds when the kept keys' fp64 weights underflow", "[adaptive][pruned]") {
  // Scores ~ +-800: a kept tile whose every key is > 745 below the row's max has in = 0 in fp64,
  // yet the approximate row is a mix of its values: the bound is 2·max||v|| (eps = 1), not max||v||.
  int64_t underflow_rows = 0;
  for (uint64_t seed = 0; seed < 12; ++seed)
    for (TileScore score : {TileScore::Mean, TileScore::Bound}) {
      Owned o(1, 2, 1, 32, 32, 4, 4, 500 + seed, 20.0f);
      const PrunedBackend pb({4, 4, 0, 0, score});
      pb.forward(o.p);
      const Tensor ref = attnkit::test::reference_of(o.p);
      const std::optional<ErrorBound> eb = pb.error_bound(o.p);
      REQUIRE(eb);
      const std::vector<double> err = row_l2_errors(ConstView(o.p.out), ref.cview());
      for (size_t r = 0; r < err.size(); ++r) {
        INFO("seed " << seed << " row " << r);
        CHECK(err[r] <= eb->out_l2[r] + 1e-5);
        underflow_rows += eb->prob_l1[r] == 2.0;
      }
    }
  CHECK(underflow_rows > 0);
}

TEST_CASE("pruned: the fixed tiles and the O(1) kept-tile count match a key-by-key marking", "[adaptive][pruned]") {
  // kept_count (cost) counts the union of the sink and window tile ranges without marking;
  // fixed_tiles (forward) marks them. Shapes where the ranges are disjoint, overlap, touch, or are
  // cut by key_end.
  for (const PrunedOptions& o : {PrunedOptions{64, 1024, 64, 64}, PrunedOptions{16, 64, 200, 40},
                                 PrunedOptions{32, 32, 0, 100}, PrunedOptions{8, 16, 30, 0}})
    for (auto [nq, nk] : {std::pair<int64_t, int64_t>{500, 500}, {130, 700}, {700, 130}})
      for (bool causal : {false, true}) {
        const adaptive::TilePlan plan(o, nq, nk);
        std::vector<char> fixed;
        for (int64_t t = 0; t < plan.q_tiles(); ++t)
          for (int64_t ke : {int64_t{0}, int64_t{1}, nk / 3, nk - 1, nk}) {
            const int64_t B = o.block, cand = (ke + B - 1) / B, off = nk - nq;
            // The fixed tiles key by key, from the plan's definition: sinks [0, sinks), the window
            // ending at the tile's last row (causal) or centred on its middle row, within key_end.
            std::vector<char> mark(static_cast<size_t>(cand), 0);
            auto keys = [&](int64_t j0, int64_t j1) {
              for (int64_t j = std::max<int64_t>(j0, 0); j < std::min(j1, ke); ++j) mark[static_cast<size_t>(j / B)] = 1;
            };
            keys(0, o.sinks);
            if (o.window > 0) {
              const int64_t i0 = t * B, i1 = std::min(nq, i0 + B);
              const int64_t pos = causal ? i1 - 1 + off : (i0 + i1 - 1) / 2 + off;
              if (causal)
                keys(pos - o.window + 1, pos + 1);
              else
                keys(pos - o.window / 2, pos - o.window / 2 + o.window);
            }
            const int64_t nf = std::count(mark.begin(), mark.end(), 1);
            INFO("block " << o.block << " window " << o.window << " sinks " << o.sinks << " n_q " << nq << " n_k " << nk
                          << " causal " << causal << " tile " << t << " key_end " << ke);
            CHECK(plan.fixed_tiles(t, cand, ke, causal, fixed) == nf);
            CHECK(plan.kept_count(t, ke, causal) == std::max(nf, std::min(o.keep / o.block, cand)));
          }
      }
}

TEST_CASE("lsh equals an fp64 Reformer oracle with the same rotations (masks, GQA, cross)", "[adaptive][lsh]") {
  for (const Variant& v : variants())
    for (const LshOptions& lo : {LshOptions{8, 2, 16, 3}, LshOptions{4, 3, 25, 9}, LshOptions{2, 6, 20, 5},
                                 LshOptions{8, 2, 16, 3, LshRest::None}, LshOptions{4, 3, 25, 9, LshRest::None}}) {
      INFO(v.name << " buckets=" << lo.buckets << " rounds=" << lo.rounds << " chunk=" << lo.chunk << " rest "
                  << (lo.rest == LshRest::Mean ? "mean" : "none"));
      Owned o(v.B, v.H, v.Hkv, v.nq, v.nk, 16, 8, 51 + lo.seed);
      o.p.mask.causal = v.causal;
      o.p.mask.key_lengths = v.lengths;
      check_against(LshBackend(lo), o.p, lsh_oracle(o.p, lo), 2e-5);
    }
}

TEST_CASE("lsh: one chunk holding every key is exact attention; rotations are standard normal", "[adaptive][lsh]") {
  Owned o(1, 2, 2, 100, 100, 16, 16, 61);
  o.p.mask.causal = true;
  CHECK(attnkit::test::rel_error(LshBackend({16, 2, 100, 0}), o.p) < 1e-5);
  const std::vector<double> r = lsh_rotation(7, 1, 0, 64, 512);
  double m = 0, m2 = 0;
  for (double x : r) m += x / r.size(), m2 += x * x / r.size();
  CHECK(std::abs(m) < 0.02);
  CHECK(std::abs(m2 - 1) < 0.03);
  CHECK(lsh_rotation(7, 1, 0, 64, 512) == r);
  CHECK(lsh_rotation(8, 1, 0, 64, 512) != r);
  CHECK(lsh_rotation(7, 2, 0, 64, 512) != r);
  CHECK(lsh_rotation(7, 1, 1, 64, 512) != r);
}

// The rest term's prefix sums have one definition (src/adaptive/lsh_rest.hpp): whatever order
// and threads the blocks are summed in, and whatever prefix a cursor comes from, the sums of a
// prefix have the same bits; and they are the fp64 means of the keys [0, e).
TEST_CASE("lsh rest=mean prefix sums: the same bits by any path; the fp64 means of the prefix", "[adaptive][lsh]") {
  const int64_t n = 1000, d = 12, dv = 5;  // 3 full blocks of 256 and a partial one
  Owned o(1, 1, 1, 1, n, d, dv, 91);
  for (int64_t j = 0; j < n; ++j)  // keys off-centre: k̄ and τ² both matter
    for (int64_t c = 0; c < d; ++c) o.k.view().at(0, 0, j, c) += 0.5f * static_cast<float>(c % 3);
  adaptive::RestBlocks in_order(d, dv), threaded(d, dv);
  in_order.reset(o.p, 0, 0, n);
  for (int64_t u = 0; u < in_order.full_blocks(); ++u) in_order.sum_block(u);
  in_order.accumulate();
  threaded.reset(o.p, 0, 0, n);
  {
    const ThreadCount three(3);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t u = threaded.full_blocks() - 1; u >= 0; --u) threaded.sum_block(u);
  }
  threaded.accumulate();
  REQUIRE(in_order.full_blocks() == 3);
  for (int64_t u = 0; u <= 3; ++u)
    CHECK(std::memcmp(in_order.prefix(u), threaded.prefix(u), sizeof(double) * (2 * d + dv)) == 0);
  // a prefix's figures: log_mass for one query and v̄
  const float* q = o.p.q.row(0, 0, 0);
  auto figures = [&](const adaptive::RestSums& rs) {
    std::vector<double> f{rs.log_mass(q, 0.3, 7)};
    for (int64_t c = 0; c < dv; ++c) f.push_back(rs.mean_v(static_cast<size_t>(c)));
    return f;
  };
  std::vector<std::vector<double>> fresh;  // a new cursor per prefix
  for (int64_t e = 1; e <= n; ++e) {
    adaptive::RestSums rs(threaded);
    rs.advance(e);
    fresh.push_back(figures(rs));
  }
  adaptive::RestSums walk(in_order), jump(in_order);
  int64_t diff = 0;
  double worst = 0;
  for (int64_t e = 1; e <= n; ++e) {
    walk.advance(e);  // every prefix in order: across block starts
    const int64_t e2 = (e * 389) % n + 1;  // every prefix in a scrambled order: back and forth
    jump.advance(e2);
    diff += figures(walk) != fresh[static_cast<size_t>(e - 1)];
    diff += figures(jump) != fresh[static_cast<size_t>(e2 - 1)];
    // fp64 means of the keys [0, e) summed from key 0, and the mass formula of adaptive.hpp
    std::vector<double> kbar(static_cast<size_t>(d), 0.0), vbar(static_cast<size_t>(dv), 0.0);
    double kk = 0;
    for (int64_t j = 0; j < e; ++j) {
      for (int64_t c = 0; c < d; ++c) {
        const double x = o.p.k.row(0, 0, j)[c];
        kbar[static_cast<size_t>(c)] += x / static_cast<double>(e);
        kk += x * x / static_cast<double>(e);
      }
      for (int64_t c = 0; c < dv; ++c) vbar[static_cast<size_t>(c)] += o.p.v.row(0, 0, j)[c] / static_cast<double>(e);
    }
    double qk = 0, qq = 0, kb2 = 0;
    for (int64_t c = 0; c < d; ++c) {
      qk += q[c] * kbar[static_cast<size_t>(c)];
      qq += static_cast<double>(q[c]) * q[c];
      kb2 += kbar[static_cast<size_t>(c)] * kbar[static_cast<size_t>(c)];
    }
    const double tau2 = std::max(0.0, kk - kb2) / static_cast<double>(d);
    std::vector<double> want{0.3 * qk + 0.5 * 0.09 * qq * tau2 + std::log(7.0)};
    want.insert(want.end(), vbar.begin(), vbar.end());
    for (size_t x = 0; x < want.size(); ++x)
      worst = std::max(worst, std::abs(fresh[static_cast<size_t>(e - 1)][x] - want[x]));
  }
  INFO("prefixes whose figures differ by the path: " << diff << "; max |figure - fp64 oracle| " << worst);
  CHECK(diff == 0);
  CHECK(worst <= 1e-12);
}

// rest=mean's key sums are computed once per (batch, kv head) in blocks of 256 keys, the blocks
// on any thread, and shared by the kv head's query heads (src/adaptive/lsh_rest.hpp): the output
// must have the same bits for any thread count, and weights() (blocks summed on one thread) must
// describe the same attention. Sizes: several key blocks, key_lengths ending inside a block,
// tasks of rows split inside one block (600 rows > 512) and causal prefixes that start inside a
// block (n_q < n_k).
TEST_CASE("lsh rest=mean: bit-identical for 1, 2 and 3 threads (GQA 8/2, key_lengths); weights() match forward",
          "[adaptive][lsh]") {
  struct Case {
    const char* name;
    int64_t nq, nk;
    bool causal;
    std::vector<int32_t> lengths;
  };
  const Case cases[] = {{"non-causal", 600, 700, false, {700, 555}},
                        {"causal", 700, 700, true, {700, 555}},
                        {"causal cross n_q < n_k", 450, 900, true, {900, 777}}};
  for (const Case& c : cases)
    for (const LshOptions& lo : {LshOptions{4, 3, 8, 5}}) {
      INFO(c.name << " buckets=" << lo.buckets << " rounds=" << lo.rounds << " chunk=" << lo.chunk);
      Owned o(2, 8, 2, c.nq, c.nk, 16, 8, 81 + static_cast<uint64_t>(c.nq + lo.chunk));
      o.p.mask.causal = c.causal;
      o.p.mask.key_lengths = c.lengths;
      const LshBackend be(lo);
      std::vector<Tensor> outs;
      for (int threads : {1, 2, 3}) {
        const ThreadCount tc(threads);
        be.forward(o.p);
        outs.push_back(o.out.clone());
      }
      const size_t bytes = static_cast<size_t>(outs[0].numel()) * sizeof(float);
      CHECK(std::memcmp(outs[0].data(), outs[1].data(), bytes) == 0);
      CHECK(std::memcmp(outs[0].data(), outs[2].data(), bytes) == 0);
      // weights(): forward's rows are weights · V (fp64 here), every row with a visible key sums
      // to 1, and a row with more visible keys than its rounds can show it (R·2C) gets the rest
      // term, which gives every visible key a weight
      const Shape d = o.p.dims();
      std::vector<float> w(static_cast<size_t>(d.n_q * d.n_k));
      std::vector<double> wv(static_cast<size_t>(d.d_v));
      double worst = 0, worst_out = 0;
      int64_t rows = 0, rest_rows = 0, spread = 0;
      for (int64_t b = 0; b < d.batch; ++b)
        for (int64_t h = 0; h < d.heads; ++h) {
          be.weights(o.p, b, h, w.data());
          for (int64_t i = 0; i < d.n_q; ++i) {
            const int64_t ke = o.p.key_end(b, i);
            if (ke == 0) continue;
            const float* wr = w.data() + i * d.n_k;
            double sum = 0;
            bool all = true;
            std::fill(wv.begin(), wv.end(), 0.0);
            for (int64_t j = 0; j < ke; ++j) {
              sum += wr[j];
              all &= wr[j] > 0;
              const float* vr = o.p.v.row(b, h / d.group(), j);
              for (int64_t c = 0; c < d.d_v; ++c) wv[static_cast<size_t>(c)] += static_cast<double>(wr[j]) * vr[c];
            }
            const float* fr = outs[0].data() + ((b * d.heads + h) * d.n_q + i) * d.d_v;
            for (int64_t c = 0; c < d.d_v; ++c) worst_out = std::max(worst_out, std::abs(wv[static_cast<size_t>(c)] - fr[c]));
            worst = std::max(worst, std::abs(sum - 1));
            ++rows;
            if (ke > lo.rounds * 2 * lo.chunk) {
              ++rest_rows;
              spread += all;
            }
          }
        }
      INFO("max |forward - weights·V| " << worst_out << ", max |row sum - 1| " << worst << "; rows with a rest term "
                                        << rest_rows << " of " << rows << ", of them with every visible key weighted "
                                        << spread);
      CHECK(worst_out <= 2e-5);
      CHECK(worst <= 1e-5);
      CHECK(rest_rows > rows / 2);
      CHECK(spread == rest_rows);
    }
}

// The clustered family's attention is diffuse (keys ~ N(0,1), scores' sd ~1.5: the top 256 of
// 4096 keys hold under half the mass, and Reformer's renormalised key subset has errors of 2-5,
// docs/adaptive.md). The rest term (rest=mean, the default) brings both suite settings below the
// mean(V) baseline at n = 4096, both masks; rest=none does not.
TEST_CASE("lsh beats the mean(V) baseline on clustered inputs (n = 4096, the suite's settings)", "[adaptive][lsh]") {
  if (attnkit::test::sanitized()) {  // 19 s under ASan; the oracle cases cover the same code there
    WARN("n = 4096 accuracy case: run in the release stage only (attnkit::test::sanitized())");
    return;
  }
  const Inputs in = generate(InputFamily::Clustered, 1, 2, 4096, 64, 3);
  Tensor out(1, 2, 4096, 64), base(1, 2, 4096, 64), ref(1, 2, 4096, 64);
  for (bool causal : {false, true}) {
    const Problem p{in.q.view(), in.k.view(), in.v.view(), out.view(), std::nullopt, {causal, {}}};
    Problem pe = p;
    pe.out = ref.view();
    ExactBackend().forward(pe);  // float32 exact: ~1e-6 from fp64, far below the margins here
    mean_value_baseline(p, base.view());
    const double eb = compare(base.cview(), ref.cview()).rel_fro;
    auto err = [&](const char* spec) {
      make_backend(spec)->forward(p);
      return compare(ConstView(p.out), ref.cview()).rel_fro;
    };
    const double l256 = err("lsh:buckets=16,rounds=8,chunk=16"), l1024 = err("lsh:buckets=16,rounds=16,chunk=32");
    const double none = err("lsh:buckets=16,rounds=8,chunk=16,rest=none");
    INFO("causal " << causal << ": lsh 256 " << l256 << ", 1024 " << l1024 << ", 256 rest=none " << none << ", mean(V) " << eb);
    CHECK(l256 < 0.97 * eb);   // measured (non-causal / causal) 0.913 / 0.676 against 0.964 / 0.903
    CHECK(l1024 < 0.92 * eb);  // 0.827 / 0.494
    CHECK(none > eb);          // 3.14 / 1.61: what the rest term fixes
  }
}

// A NaN value in a visible key reaches every row with rest=mean (through v̄, as exact's output
// would), and only the rows whose rounds saw that key with rest=none.
TEST_CASE("lsh: a NaN value of an unseen visible key reaches the row with rest=mean only", "[adaptive][lsh]") {
  Owned o(1, 1, 1, 64, 64, 16, 8, 71);
  o.v.view().at(0, 0, 5, 3) = std::numeric_limits<float>::quiet_NaN();
  auto nan_rows = [&](LshRest rest) {
    LshBackend(LshOptions{8, 1, 4, 0, rest}).forward(o.p);
    int64_t n = 0;
    for (int64_t i = 0; i < 64; ++i) n += std::isnan(o.out.view().at(0, 0, i, 3)) ? 1 : 0;
    return n;
  };
  CHECK(nan_rows(LshRest::Mean) == 64);
  const int64_t none = nan_rows(LshRest::None);  // one round of 8 keys per query: most rows miss key 5
  CHECK(none > 0);
  CHECK(none < 64);
}

TEST_CASE("adaptive specs: canonical form and bad values rejected", "[adaptive]") {
  CHECK(make_backend("topk")->spec() == "topk:k=256");
  CHECK(make_backend("pruned:keep=256")->spec() == "pruned:block=64,keep=256,window=64,sinks=64,score=mean");
  CHECK(make_backend("lsh")->spec() == "lsh:buckets=64,rounds=4,chunk=64,seed=0,rest=mean");
  CHECK(make_backend("lsh:rest=none")->spec() == "lsh:buckets=64,rounds=4,chunk=64,seed=0,rest=none");
  for (const char* bad : {"topk:k=0", "pruned:block=0", "pruned:score=max", "pruned:keep=0", "lsh:buckets=7",
                          "lsh:rounds=0", "lsh:chunk=0", "lsh:rest=max"})
    CHECK_THROWS_AS(make_backend(bad), Error);
}

TEST_CASE("trained attention (w0, n = 2048): topk equals the issue's numpy oracle; pruned beats the window; lsh beats mean(V)",
          "[adaptive][data]") {
  const std::string dir = attnkit::test::data_dir() + "/trained-attention/";
  if (attnkit::test::data_dir().empty() || !std::ifstream(dir + "w0_layer2_q.npy")) {
    WARN("trained-attention data not found (ATTNKIT_DATA_DIR=" << attnkit::test::data_dir() << "); skipped");
    return;
  }
  if (attnkit::test::sanitized()) {
    WARN("n = 2048 trained-input case: run in the release stage only (attnkit::test::sanitized())");
    return;
  }
  auto load = [&](const std::string& name) {
    NpyArray a = read_npy(dir + name);
    REQUIRE(a.shape == std::vector<int64_t>{1, 4, 2048, 64});
    Tensor t(1, 4, 2048, 64);
    std::copy(a.f32.begin(), a.f32.end(), t.data());
    return t;
  };
  // Issue 15's table (numpy, rel. Frobenius vs exact): top-k 256 and 1024 per layer.
  const double table[3][2] = {{0.188, 0.047}, {0.017, 0.002}, {0.028, 0.004}};
  for (int layer = 1; layer <= 3; ++layer) {
    const std::string base = "w0_layer" + std::to_string(layer);
    const Tensor q = load(base + "_q.npy"), k = load(base + "_k.npy"), v = load(base + "_v.npy");
    Tensor out(1, 4, 2048, 64), ref(1, 4, 2048, 64);
    Problem p{q.view(), k.view(), v.view(), out.view(), 0.125f, {true, {}}};
    Problem pr = p;
    pr.out = ref.view();
    ExactBackend().forward(pr);  // float32 exact: 1e-6 from the fp64 reference, far below 1e-3
    auto err = [&](const char* spec) {
      make_backend(spec)->forward(p);
      return compare(ConstView(p.out), ref.cview()).rel_fro;
    };
    const double t256 = err("topk:k=256"), t1024 = err("topk:k=1024");
    INFO(base << ": topk 256 " << t256 << ", topk 1024 " << t1024);
    CHECK(std::abs(t256 - table[layer - 1][0]) <= 1e-3 + 5e-4);  // the table has 3 decimals
    CHECK(std::abs(t1024 - table[layer - 1][1]) <= 1e-3 + 5e-4);
    // lsh with the quick suite's settings beats mean(V) clearly at both budgets, both masks.
    for (bool causal : {true, false}) {
      Problem pl = p;
      pl.mask.causal = causal;
      Tensor mv(1, 4, 2048, 64), ref_l(1, 4, 2048, 64);
      Problem pe = pl;
      pe.out = ref_l.view();
      ExactBackend().forward(pe);
      mean_value_baseline(pl, mv.view());
      const double base_l = compare(mv.cview(), ref_l.cview()).rel_fro;
      auto lsh_err = [&](const char* spec) {
        make_backend(spec)->forward(pl);
        return compare(ConstView(pl.out), ref_l.cview()).rel_fro;
      };
      const double l256 = lsh_err("lsh:buckets=16,rounds=8,chunk=16"), l1024 = lsh_err("lsh:buckets=16,rounds=16,chunk=32");
      INFO("causal " << causal << ": lsh 256 " << l256 << ", lsh 1024 " << l1024 << ", mean(V) " << base_l);
      CHECK(l256 < 0.5 * base_l);    // measured 0.24-0.36 against 0.90-0.96 (rest=mean)
      CHECK(l1024 < 0.25 * base_l);  // measured 0.08-0.12
    }
    if (layer >= 2) {  // layer 1's diffuse heads: see the report's headroom table
      const double pr1024 = err("pruned:keep=1024,window=128,sinks=0"), w1024 = err("local:window=1024");
      INFO("pruned 1024 " << pr1024 << ", window 1024 " << w1024);
      CHECK(pr1024 <= 0.75 * w1024);
    }
  }
}
