// local vs an independent dense oracle: the allowed set is rebuilt here from the documented
// semantics as an explicit allowed[i][j] matrix (only the random block draw is taken from
// LocalPattern, and its properties are tested separately), then an fp64 masked softmax.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>

#include "support.hpp"

using namespace attnkit;
using attnkit::test::Owned;

namespace {

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// allowed[i * n_k + j] for batch b, query head h, straight from the spec's wording.
std::vector<char> allowed_matrix(const LocalOptions& o, const Problem& p, int64_t b, int64_t h) {
  const Shape d = p.dims();
  const LocalPattern pat(o, d.n_q, d.n_k, p.mask.causal);
  const int64_t left = p.mask.causal ? std::max<int64_t>(o.window - 1, 0) : o.window / 2;
  const int64_t right = p.mask.causal || o.window == 0 ? 0 : o.window - 1 - o.window / 2;
  std::vector<char> a(static_cast<size_t>(d.n_q * d.n_k), 0);
  std::vector<int64_t> rnd;
  for (int64_t i = 0; i < d.n_q; ++i) {
    const int64_t pos = i + d.n_k - d.n_q;
    if (o.blocks > 0) pat.random_blocks(h, floor_div(pos, o.blocks), rnd);
    for (int64_t j = 0; j < p.key_end(b, i); ++j) {
      bool ok = (pos >= 0 && pos < o.global) || j < o.global;
      const int64_t t = j - pos;
      if (o.window > 0 && t % o.dilation == 0 && t >= -left * o.dilation && t <= right * o.dilation) ok = true;
      if (o.blocks > 0) {
        const int64_t qb = floor_div(pos, o.blocks), kb = j / o.blocks;
        if (kb >= qb - 1 && kb <= qb + 1) ok = true;
        if (std::find(rnd.begin(), rnd.end(), kb) != rnd.end()) ok = true;
      }
      a[static_cast<size_t>(i * d.n_k + j)] = ok;
    }
  }
  return a;
}

// fp64 masked attention over an explicit allowed matrix; also returns the probabilities of
// (b=0, h=0) when `w00` is given.
Tensor masked_oracle(const LocalOptions& o, const Problem& p, std::vector<double>* w00 = nullptr) {
  const Shape d = p.dims();
  Tensor out(d.batch, d.heads, d.n_q, d.d_v);
  const double s = p.effective_scale();
  if (w00) w00->assign(static_cast<size_t>(d.n_q * d.n_k), 0.0);
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.heads; ++h) {
      const int64_t g = h / d.group();
      const std::vector<char> a = allowed_matrix(o, p, b, h);
      std::vector<double> w(static_cast<size_t>(d.n_k));
      for (int64_t i = 0; i < d.n_q; ++i) {
        double mx = -INFINITY;
        for (int64_t j = 0; j < d.n_k; ++j) {
          if (!a[static_cast<size_t>(i * d.n_k + j)]) continue;
          double dot = 0;
          for (int64_t c = 0; c < d.d; ++c) dot += double(p.q.at(b, h, i, c)) * p.k.at(b, g, j, c);
          w[static_cast<size_t>(j)] = s * dot;
          mx = std::max(mx, s * dot);
        }
        double sum = 0;
        for (int64_t j = 0; j < d.n_k; ++j)
          if (a[static_cast<size_t>(i * d.n_k + j)]) sum += (w[static_cast<size_t>(j)] = std::exp(w[static_cast<size_t>(j)] - mx));
        for (int64_t c = 0; c < d.d_v; ++c) {
          double acc = 0;
          for (int64_t j = 0; j < d.n_k; ++j)
            if (a[static_cast<size_t>(i * d.n_k + j)]) acc += w[static_cast<size_t>(j)] / sum * p.v.at(b, g, j, c);
          out.view().at(b, h, i, c) = static_cast<float>(acc);
        }
        if (w00 && b == 0 && h == 0)
          for (int64_t j = 0; j < d.n_k; ++j)
            if (a[static_cast<size_t>(i * d.n_k + j)]) (*w00)[static_cast<size_t>(i * d.n_k + j)] = w[static_cast<size_t>(j)] / sum;
      }
    }
  return out;
}

void expect_matches_oracle(Owned& o, const LocalOptions& opt) {
  const LocalBackend lb(opt);
  lb.forward(o.p);
  const Tensor ref = masked_oracle(opt, o.p);
  const ErrorMetrics em = compare(ConstView(o.p.out), ref.cview());
  INFO(lb.spec() << " causal=" << o.p.mask.causal << " rel_fro " << em.rel_fro << " max_abs " << em.max_abs);
  CHECK(em.rel_fro <= 2e-6);
  CHECK(em.max_abs <= 1e-5);
}

// Largest ||v_j||_2 of the problem: fp32 rounding of an output row is relative to it.
double max_value_norm(const Problem& p) {
  const Shape d = p.dims();
  double m = 0;
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t g = 0; g < d.kv_heads; ++g)
      for (int64_t j = 0; j < d.n_k; ++j) {
        double n2 = 0;
        for (int64_t c = 0; c < d.d_v; ++c) n2 += double(p.v.at(b, g, j, c)) * p.v.at(b, g, j, c);
        m = std::max(m, std::sqrt(n2));
      }
  return m;
}

std::vector<LocalOptions> all_modes() {
  // window, dilation, global, blocks, random, seed, block_q, block_k
  return {{1, 1, 0, 0, 0, 0, 0, 0},    {2, 1, 0, 0, 0, 0, 0, 0},     {7, 1, 0, 0, 0, 0, 0, 0},
          {16, 1, 0, 0, 0, 0, 0, 0},   {64, 1, 0, 0, 0, 0, 0, 0},    {1000, 1, 0, 0, 0, 0, 0, 0},
          {8, 1, 0, 0, 0, 0, 5, 7},    {5, 2, 0, 0, 0, 0, 0, 0},     {6, 3, 0, 0, 0, 0, 4, 3},
          {9, 1, 5, 0, 0, 0, 0, 0},    {4, 3, 7, 0, 0, 0, 0, 0},     {0, 1, 0, 8, 0, 0, 0, 0},
          {0, 1, 0, 8, 2, 3, 0, 0},    {0, 1, 16, 16, 1, 9, 0, 0},   {10, 1, 3, 12, 2, 5, 0, 0},
          {0, 1, 0, 5, 3, 1, 2, 3},    {3, 1, 200, 0, 0, 0, 0, 0}};
}

}  // namespace

TEST_CASE("local matches the masked oracle in every mode, causal and not", "[local]") {
  struct S { int64_t B, H, Hkv, nq, nk, d, dv; };
  const S shapes[] = {{1, 2, 2, 100, 100, 16, 16}, {2, 4, 2, 77, 77, 32, 24}, {1, 2, 2, 50, 130, 16, 16},
                      {1, 2, 1, 130, 50, 8, 8},    {1, 1, 1, 1, 1, 4, 4},     {1, 2, 2, 3, 9, 4, 4}};
  for (const S& s : shapes)
    for (const LocalOptions& opt : all_modes())
      for (bool causal : {false, true}) {
        Owned o(s.B, s.H, s.Hkv, s.nq, s.nk, s.d, s.dv, 7 + s.nq + opt.window);
        o.p.mask.causal = causal;
        INFO("B=" << s.B << " H=" << s.H << " Hkv=" << s.Hkv << " nq=" << s.nq << " nk=" << s.nk << " d=" << s.d);
        expect_matches_oracle(o, opt);
      }
}

TEST_CASE("local honours key_lengths (0, partial, full) in every mode", "[local]") {
  for (const LocalOptions& opt : all_modes())
    for (bool causal : {false, true}) {
      Owned o(3, 2, 2, 61, 61, 8, 8, 3 + opt.window);
      o.p.mask.key_lengths = {0, 23, 61};
      o.p.mask.causal = causal;
      expect_matches_oracle(o, opt);
    }
}

TEST_CASE("local equals exact attention when every query sees every key", "[local]") {
  const LocalOptions full[] = {{0, 1, 0, 16, 1, 0, 0, 0},  // 3 blocks: neighbours cover, plus one random
                               {0, 1, 0, 10, 2, 4, 0, 0},  // 4 blocks: neighbours + 2 random = all (causal too)
                               {81, 1, 0, 0, 0, 0, 0, 0},  // centred window of 2n+1
                               {2, 1, 40, 0, 0, 0, 0, 0}};  // every position global
  for (const LocalOptions& opt : full)
    for (bool causal : {false, true}) {
      Owned o(1, 2, 2, 40, 40, 16, 16, 5);
      o.p.mask.causal = causal;
      const LocalBackend lb(opt);
      INFO(lb.spec() << " causal=" << causal);
      CHECK(attnkit::test::rel_error(lb, o.p) <= 2e-6);
    }
}

TEST_CASE("random blocks: count, distinct, not neighbours or global, causal left, seeded", "[local]") {
  const int64_t n = 1000, B = 10;  // 100 key blocks
  for (bool causal : {false, true}) {
    const LocalPattern pat({0, 1, 25, B, 4, 11, 0, 0}, n, n, causal);
    const LocalPattern other({0, 1, 25, B, 4, 12, 0, 0}, n, n, causal);
    std::vector<int64_t> r, r2, r3;
    int64_t differ = 0;
    std::set<int64_t> seen;
    for (int64_t qb = 0; qb < 100; ++qb) {
      pat.random_blocks(0, qb, r);
      int64_t candidates = 0;
      for (int64_t kb = 0; kb < 100; ++kb)
        candidates += (kb + 1) * B > 25 && (kb < qb - 1 || kb > qb + 1) && (!causal || kb <= qb);
      INFO("qb " << qb << " causal " << causal);
      CHECK(static_cast<int64_t>(r.size()) == std::min<int64_t>(4, candidates));
      CHECK(std::is_sorted(r.begin(), r.end()));
      CHECK(std::adjacent_find(r.begin(), r.end()) == r.end());
      for (int64_t kb : r) {
        CHECK(kb >= 2);  // blocks 0 and 1 lie wholly in the 25 globals
        CHECK(kb < 100);
        CHECK((kb < qb - 1 || kb > qb + 1));
        if (causal) CHECK(kb <= qb - 2);
        seen.insert(kb);
      }
      pat.random_blocks(0, qb, r2);
      CHECK(r == r2);
      other.random_blocks(0, qb, r3);
      differ += r != r3;
      pat.random_blocks(1, qb, r3);
      differ += r != r3;
    }
    CHECK(differ > 100);          // seed and head both change the draw
    CHECK(seen.size() >= (causal ? 50u : 90u));  // the draw reaches most candidate blocks
  }
}

TEST_CASE("local weights are the softmax restricted to N(i)", "[local]") {
  for (const LocalOptions& opt : all_modes())
    for (bool causal : {false, true}) {
      Owned o(1, 2, 2, 45, 52, 8, 8, 17);
      o.p.mask.causal = causal;
      std::vector<double> expect;
      masked_oracle(opt, o.p, &expect);
      std::vector<float> w(45 * 52);
      LocalBackend(opt).weights(o.p, 0, 0, w.data());
      double worst = 0;
      for (size_t x = 0; x < w.size(); ++x) worst = std::max(worst, std::fabs(w[x] - expect[x]));
      INFO(LocalBackend(opt).spec() << " causal=" << causal);
      CHECK(worst <= 1e-6);
    }
}

TEST_CASE("local cost counts exactly the allowed pairs", "[local]") {
  for (const LocalOptions& opt : all_modes())
    for (bool causal : {false, true}) {
      Owned o(1, 3, 3, 70, 70, 8, 8, 1);
      o.p.mask.causal = causal;
      double pairs = 0;
      for (int64_t h = 0; h < 3; ++h)
        for (char x : allowed_matrix(opt, o.p, 0, h)) pairs += x;
      const Cost c = LocalBackend(opt).cost({1, 3, 3, 70, 70, 8, 8, causal});
      CHECK(c.flops == pairs * 2 * 16);
      const Cost run = LocalBackend(opt).computed_cost({1, 3, 3, 70, 70, 8, 8, causal});
      CHECK(run.flops >= c.flops);
    }
}

TEST_CASE("error bound: row L1 = 2 eps exactly and the output bound holds", "[local]") {
  const LocalOptions modes[] = {{16, 1, 0, 0, 0, 0, 0, 0}, {32, 1, 0, 0, 0, 0, 0, 0}, {12, 3, 4, 0, 0, 0, 0, 0},
                                {8, 1, 8, 0, 0, 0, 0, 0},  {0, 1, 16, 16, 2, 1, 0, 0}};
  for (InputFamily f : {InputFamily::Gaussian, InputFamily::Peaky, InputFamily::Local})
    for (const LocalOptions& opt : modes)
      for (bool causal : {false, true}) {
        const int64_t n = 192, H = 2;
        Inputs in = generate(f, 1, H, n, 32, 3);
        Tensor out(1, H, n, 32);
        Problem p{in.q.view(), in.k.view(), in.v.view(), out.view(), std::nullopt, {}};
        p.mask.causal = causal;
        const LocalBackend lb(opt);
        INFO(input_family_name(f) << " " << lb.spec() << " causal=" << causal);
        lb.forward(p);
        const Tensor ref = attnkit::test::reference_of(p);
        const std::optional<ErrorBound> eb = lb.error_bound(p);
        REQUIRE(eb);
        const std::vector<double> err = row_l2_errors(ConstView(p.out), ref.cview());
        std::vector<float> wl(n * n), wr(n * n);
        double worst_identity = 0, worst_slack = -1e30, mean_eps = 0;
        for (int64_t h = 0; h < H; ++h) {
          lb.weights(p, 0, h, wl.data());
          ReferenceBackend().weights(p, 0, h, wr.data());
          for (int64_t i = 0; i < n; ++i) {
            const size_t r = static_cast<size_t>(h * n + i);
            const double l1 = row_l1(wl.data() + i * n, wr.data() + i * n, n);
            worst_identity = std::max(worst_identity, std::fabs(l1 - eb->prob_l1[r]));
            worst_slack = std::max(worst_slack, err[r] - eb->out_l2[r]);
            mean_eps += eb->prob_l1[r] / 2 / (H * n);
          }
        }
        INFO("max |L1 - 2 eps| " << worst_identity << ", max(err - bound) " << worst_slack << ", mean eps " << mean_eps);
        CHECK(worst_identity <= 1e-5);
        CHECK(worst_slack <= 1e-5 * max_value_norm(p));  // fp32 rounding (exact has it too) on top of the identity
      }
}

TEST_CASE("error bound holds on trained attention (w0 layer 2, causal, scale 0.125)", "[local][data]") {
  const std::string dir = attnkit::test::data_dir() + "/trained-attention/";
  if (attnkit::test::data_dir().empty() || !std::ifstream(dir + "w0_layer2_q.npy")) {
    WARN("trained-attention data not found (ATTNKIT_DATA_DIR=" << attnkit::test::data_dir() << "); skipped");
    return;
  }
  auto load = [&](const char* name) {
    NpyArray a = read_npy(dir + name);
    REQUIRE(a.shape == std::vector<int64_t>{1, 4, 2048, 64});
    Tensor t(1, 4, 2048, 64);
    std::copy(a.f32.begin(), a.f32.end(), t.data());
    return t;
  };
  const Tensor q = load("w0_layer2_q.npy"), k = load("w0_layer2_k.npy"), v = load("w0_layer2_v.npy");
  Tensor out(1, 4, 2048, 64);
  Problem p{q.view(), k.view(), v.view(), out.view(), 0.125f, {true, {}}};
  const Tensor ref = attnkit::test::reference_of(p);
  for (const char* spec : {"local:window=256", "local:window=64,global=16"}) {
    const auto lb = make_backend(spec);
    lb->forward(p);
    const std::optional<ErrorBound> eb = lb->error_bound(p);
    REQUIRE(eb);
    const std::vector<double> err = row_l2_errors(ConstView(p.out), ref.cview());
    double worst_slack = -1e30, mean_eps = 0, mean_err = 0, mean_bound = 0;
    for (size_t r = 0; r < err.size(); ++r) {
      worst_slack = std::max(worst_slack, err[r] - eb->out_l2[r]);
      mean_eps += eb->prob_l1[r] / 2 / err.size();
      mean_err += err[r] / err.size();
      mean_bound += eb->out_l2[r] / err.size();
    }
    INFO(spec << ": mean eps " << mean_eps << ", mean row error " << mean_err << ", mean bound " << mean_bound
              << ", max(err - bound) " << worst_slack << ", rel_fro " << compare(ConstView(p.out), ref.cview()).rel_fro
              << ", max ||v|| " << max_value_norm(p));
    CHECK(worst_slack <= 1e-5 * max_value_norm(p));  // fp32 rounding (exact has it too) on top of the identity
    CHECK(mean_err <= mean_bound);
  }
}

TEST_CASE("local spec, options and errors", "[local]") {
  const auto lb = make_backend("local:window=256,global=16");
  CHECK(lb->spec() == "local:window=256,dilation=1,global=16,blocks=0,random=0,seed=0,block_q=0,block_k=0");
  CHECK(make_backend(lb->spec())->spec() == lb->spec());
  // Printed through the one table; fp32 leaves the precision row out (attnkit/precision.hpp).
  CHECK(lb->spec() == Params("local", spec_params(local_info().params, ComputePrecision::fp32), parse_spec(lb->spec()).pairs).canonical());
  const auto lb16 = make_backend("local:window=256,global=16,precision=bf16");
  CHECK(lb16->spec() == Params("local", local_info().params, parse_spec(lb16->spec()).pairs).canonical());
  CHECK(make_backend("local")->spec() == "local:window=256,dilation=1,global=0,blocks=0,random=0,seed=0,block_q=0,block_k=0");
  CHECK_THROWS_WITH(make_backend("local:window=0"), Catch::Contains("window=0 and blocks=0"));
  CHECK_THROWS_WITH(make_backend("local:window=8,random=2"), Catch::Contains("random=2"));
  CHECK_THROWS_WITH(make_backend("local:blocks=8,window=4,dilation=2"), Catch::Contains("dilation=2"));
  CHECK_THROWS_WITH(make_backend("local:window=0,dilation=2,blocks=8"), Catch::Contains("dilation=2"));
  CHECK_THROWS_WITH(make_backend("local:window=-1"), Catch::Contains("window"));
  CHECK_THROWS_WITH(make_backend("local:window=4,bogus=1"), Catch::Contains("unknown key"));
  CHECK_THROWS_AS(LocalBackend({4, 0, 0, 0, 0, 0, 0, 0}), Error);
  Owned o(1, 2, 2, 8, 8, 4, 4, 1);
  std::vector<float> w(64);
  CHECK_THROWS_WITH(lb->weights(o.p, 0, 2, w.data()), Catch::Contains("head 2"));
  o.p.mask.key_lengths = {9};
  CHECK_THROWS_WITH(lb->forward(o.p), Catch::Contains("key_lengths[0]"));
}

TEST_CASE("error bound holds when the window's fp64 weights underflow (scores ~ +-800)", "[local]") {
  // Every allowed key > 745 below the row's max: exp underflows to 0 for all of them, yet the row
  // is not empty (the output is a mix of its values): the bound is 2·max||v||, not max||v||.
  int64_t underflow_rows = 0;
  for (uint64_t seed = 0; seed < 12; ++seed)
    for (bool causal : {false, true}) {
      Owned o(1, 2, 1, 32, 32, 4, 4, 300 + seed, 20.0f);
      o.p.mask.causal = causal;
      const LocalBackend lb({2, 1, 1, 0, 0, 0, 0, 0});
      lb.forward(o.p);
      const Tensor ref = attnkit::test::reference_of(o.p);
      const std::optional<ErrorBound> eb = lb.error_bound(o.p);
      REQUIRE(eb);
      const std::vector<double> err = row_l2_errors(ConstView(o.p.out), ref.cview());
      for (size_t r = 0; r < err.size(); ++r) {
        INFO("seed " << seed << " causal " << causal << " row " << r);
        CHECK(err[r] <= eb->out_l2[r] + 1e-5);
        underflow_rows += eb->prob_l1[r] == 2.0;
      }
    }
  CHECK(underflow_rows > 0);  // the case this test is about occurred
}

TEST_CASE("error bound when key_lengths hide a row's whole window: zero row, L1 = 1", "[local]") {
  for (bool causal : {false, true}) {
    Owned o(2, 2, 1, 40, 40, 8, 8, 21);
    o.p.mask.key_lengths = {10, 40};
    o.p.mask.causal = causal;
    const LocalBackend lb({4, 1, 0, 0, 0, 0, 0, 0});
    lb.forward(o.p);
    const Tensor ref = attnkit::test::reference_of(o.p);
    const std::optional<ErrorBound> eb = lb.error_bound(o.p);
    REQUIRE(eb);
    const std::vector<double> err = row_l2_errors(ConstView(o.p.out), ref.cview());
    std::vector<float> wl(40 * 40), wr(40 * 40);
    for (int64_t h = 0; h < 2; ++h) {
      lb.weights(o.p, 0, h, wl.data());
      ReferenceBackend().weights(o.p, 0, h, wr.data());
      for (int64_t i = 0; i < 40; ++i) {
        const size_t r = static_cast<size_t>(h * 40 + i);
        INFO("causal " << causal << " h " << h << " i " << i);
        CHECK(std::fabs(row_l1(wl.data() + i * 40, wr.data() + i * 40, 40) - eb->prob_l1[r]) <= 1e-5);
        CHECK(err[r] <= eb->out_l2[r] + 1e-5);
        if (i >= (causal ? 13 : 12)) {  // window [i-2, i+1] (causal [i-3, i]) lies beyond the 10 keys
          CHECK(eb->prob_l1[r] == 1.0);
          CHECK(o.out.view().at(0, h, i, 0) == 0.0f);
        }
      }
    }
  }
}
