// Conformance: what every backend of the build must do, checked over list_backends() so that a new
// family is covered without an edit here. Each backend is compared with what it must equal:
//   - exact backends with `reference` (and their weights with reference's weights);
//   - every backend with weights: its forward output with its own weights · V, masked entries zero,
//     rows summing to 1 (or all zero when the row sees no key);
//   - every backend with an error_bound: each row's error against the bound;
//   - every backend: masks (causal bottom-right aligned, key_lengths 0 / partial / full), GQA,
//     cross-attention, hidden keys never read, strided layout = dense layout, bit-identical output
//     for 1 and 2 OpenMP threads and for a fresh object, concurrent calls from std::threads = serial
//     calls, and a capability it lacks => attnkit::Error naming it.
// Specs: each backend's default spec plus a few small settings (below) that make the
// approximations actually approximate at the small sizes used here, so the suite stays fast.
#include <omp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace attnkit;
using attnkit::test::Owned;

namespace {

// Backends whose output must equal `reference` up to float32 rounding.
bool is_exact(const std::string& spec) {
  const std::string name = parse_spec(spec).name;
  return name == "exact" || name == "reference";
}

// Small settings of the families this file knows; each is used only when its backend is built.
// Optional: a backend that is not listed is still tested with its default spec.
const char* const kSmallSettings[] = {
    "local:window=8",
    "local:window=5,dilation=2",
    "local:window=10,global=3,blocks=12,random=2,seed=5",
    "performer:features=16,chunk=5",
    "performer:features=16,orthogonal=0,redraw=1",
    "linear:chunk=7",
    "clustered:clusters=4",
    "clustered:clusters=6,topk=8",
};

// Backends whose implied weights are not probability rows (documented in their headers): low-rank
// products (lowrank.hpp: negative entries allowed, linformer's rows do not sum to 1). Their weights
// are still checked for zeros on masked keys and forward = weights · V.
bool weights_are_probabilities(const std::string& spec) {
  const std::string name = parse_spec(spec).name;
  return name != "nystrom" && name != "linformer";
}

bool built(const std::string& name) {
  for (const BackendInfo& info : list_backends())
    if (info.name == name) return true;
  return false;
}

// Every backend's canonical default spec, then the small settings of the built ones.
const std::vector<std::string>& specs() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> s;
    for (const BackendInfo& info : list_backends()) s.push_back(make_backend(info.name)->spec());
    for (const char* small : kSmallSettings)
      if (built(parse_spec(small).name)) s.push_back(make_backend(small)->spec());
    return s;
  }();
  return v;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.data(), b.data(), static_cast<size_t>(a.numel()) * 4) == 0;
}

struct ThreadCount {
  int saved = omp_get_max_threads();
  explicit ThreadCount(int n) { omp_set_num_threads(n); }
  ~ThreadCount() { omp_set_num_threads(saved); }
};

// One problem of the matrix: sizes and mask.
struct Case {
  int64_t B, H, Hkv, nq, nk, d, dv;
  bool causal;
  std::vector<int32_t> key_lengths;

  std::string name() const {
    std::ostringstream os;
    os << "B=" << B << " H=" << H << " Hkv=" << Hkv << " nq=" << nq << " nk=" << nk << " d=" << d << " dv=" << dv
       << (causal ? " causal" : "");
    if (!key_lengths.empty()) {
      os << " key_lengths={";
      for (size_t i = 0; i < key_lengths.size(); ++i) os << (i ? "," : "") << key_lengths[i];
      os << "}";
    }
    return os.str();
  }
  // The capability this case needs that `c` lacks, as the word the error message must contain;
  // empty when the backend can honour the case.
  std::string missing(const Capabilities& c) const {
    if (causal && !c.causal) return "mask.causal";
    if (!key_lengths.empty() && !c.key_lengths) return "mask.key_lengths";
    if (nq != nk && !c.cross) return "cross-attention";
    if (Hkv != H && !c.gqa) return "grouped-query";
    return "";
  }
};

// A case with its data, and (lazily, shared by every backend) reference's output and weights.
struct Prepared {
  Case c;
  Owned o;
  Tensor ref;
  std::map<std::pair<int64_t, int64_t>, std::vector<float>> ref_w;
  Prepared(const Case& cs, uint64_t seed) : c(cs), o(cs.B, cs.H, cs.Hkv, cs.nq, cs.nk, cs.d, cs.dv, seed) {
    o.p.mask.causal = cs.causal;
    o.p.mask.key_lengths = cs.key_lengths;
  }
  const Tensor& reference() {
    if (ref.numel() == 0) ref = attnkit::test::reference_of(o.p);
    return ref;
  }
  const std::vector<float>& reference_weights(int64_t b, int64_t h) {
    auto& w = ref_w[{b, h}];
    if (w.empty()) {
      w.resize(static_cast<size_t>(c.nq * c.nk));
      ReferenceBackend().weights(o.p, b, h, w.data());
    }
    return w;
  }
};

// The mask matrix: every shape (self, GQA, cross both ways, a longer one where the small settings
// approximate) with no mask, causal, key_lengths (a batch with 0 and one full; a partial one and
// one of a single key), and both.
std::vector<std::unique_ptr<Prepared>>& cases() {
  static std::vector<std::unique_ptr<Prepared>> v = [] {
    struct S { int64_t B, H, Hkv, nq, nk, d, dv; };
    const S shapes[] = {{2, 2, 2, 40, 40, 16, 16},   // self-attention
                        {2, 4, 2, 33, 33, 8, 12},    // GQA, d_v != d
                        {2, 2, 1, 20, 45, 16, 16},   // cross, n_q < n_k, and GQA
                        {2, 2, 2, 45, 20, 16, 8},    // cross, n_q > n_k: causal hides the first 25 rows
                        {2, 2, 2, 300, 300, 32, 32}};
    std::vector<std::unique_ptr<Prepared>> out;
    uint64_t seed = 1000;
    for (const S& s : shapes)
      for (bool causal : {false, true})
        for (int kl = 0; kl < 3; ++kl) {
          std::vector<int32_t> lengths;
          if (kl == 1) lengths = {0, static_cast<int32_t>(s.nk)};
          if (kl == 2) lengths = {static_cast<int32_t>(s.nk * 2 / 3), 1};
          out.push_back(std::make_unique<Prepared>(Case{s.B, s.H, s.Hkv, s.nq, s.nk, s.d, s.dv, causal, lengths}, ++seed));
        }
    return out;
  }();
  return v;
}

// Largest ||v_j||_2: the float32 rounding of an output row is relative to it.
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

// Relative Frobenius difference of a and r over the rows where `keep(b, h, i)` holds.
template <class Keep>
double rel_diff_rows(ConstView a, ConstView r, Keep keep) {
  double num = 0, den = 0;
  for (int64_t b = 0; b < a.batch(); ++b)
    for (int64_t h = 0; h < a.heads(); ++h)
      for (int64_t i = 0; i < a.seq(); ++i) {
        if (!keep(b, h, i)) continue;
        for (int64_t c = 0; c < a.dim(); ++c) {
          const double x = a.at(b, h, i, c), y = r.at(b, h, i, c);
          num += (x - y) * (x - y);
          den += y * y;
        }
      }
  return num == 0 ? 0 : std::sqrt(num / std::max(den, 1e-300));
}

// forward's output against the backend's own weights: masked entries zero, rows summing to 1 or
// all zero (always zero when the row sees no key; sums and signs only where the weights are
// probabilities), out = weights · V (in double). For exact backends also the weights
// against reference's. Returns the relative Frobenius difference out vs weights·V.
double check_weights(const Backend& be, Prepared& pc, const Tensor& out) {
  const Problem& p = pc.o.p;
  const Shape d = p.dims();
  std::vector<float> w(static_cast<size_t>(d.n_q * d.n_k));
  const bool probabilities = weights_are_probabilities(be.spec());
  double num = 0, den = 0, worst_sum = 0, worst_ref = 0;
  int64_t bad_entries = 0;
  std::vector<double> x(static_cast<size_t>(d.d_v));
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.heads; ++h) {
      be.weights(p, b, h, w.data());
      const int64_t g = h / d.group();
      for (int64_t i = 0; i < d.n_q; ++i) {
        const float* row = w.data() + i * d.n_k;
        const int64_t end = p.key_end(b, i);
        double sum = 0;
        for (int64_t j = 0; j < d.n_k; ++j) {
          if (!std::isfinite(row[j]) || (probabilities && row[j] < 0) || (j >= end && row[j] != 0.0f)) ++bad_entries;
          sum += row[j];
        }
        // A row sums to 1, or is all zero: when it sees no key, or (local) no key of its pattern.
        if (probabilities) worst_sum = std::max(worst_sum, sum == 0 ? 0.0 : std::fabs(sum - 1.0));
        if (end == 0 && sum != 0) ++bad_entries;
        // weights · V, key by key along value rows (row pointers instead of an element accessor
        // per product; the sums keep their order, so the result is the same)
        std::fill(x.begin(), x.end(), 0.0);
        for (int64_t j = 0; j < end; ++j) {
          const float* vr = p.v.row(b, g, j);
          for (int64_t c = 0; c < d.d_v; ++c) x[size_t(c)] += double(row[j]) * vr[c];
        }
        const float* o = out.view().row(b, h, i);
        for (int64_t c = 0; c < d.d_v; ++c) {
          num += (x[size_t(c)] - o[c]) * (x[size_t(c)] - o[c]);
          den += x[size_t(c)] * x[size_t(c)];
        }
      }
      if (is_exact(be.spec())) {
        const std::vector<float>& r = pc.reference_weights(b, h);
        for (size_t e = 0; e < w.size(); ++e) worst_ref = std::max(worst_ref, double(std::fabs(w[e] - r[e])));
      }
    }
  INFO("weights: entries negative, non-finite or on masked keys " << bad_entries << ", worst |row sum - 1| (non-zero rows) "
                                                                  << worst_sum << ", worst |w - reference w| " << worst_ref);
  CHECK(bad_entries == 0);
  CHECK(worst_sum <= 1e-5);
  CHECK(worst_ref <= 1e-6);
  return num == 0 ? 0 : std::sqrt(num / std::max(den, 1e-300));
}

// Every row's error against the backend's a-posteriori bound (plus float32 rounding, as the sweep
// allows), and the probability rows' L1 distance against prob_l1 where both exist.
void check_bound(const Backend& be, Prepared& pc, const Tensor& out) {
  const Problem& p = pc.o.p;
  const std::optional<ErrorBound> eb = be.error_bound(p);
  if (!eb) return;
  const Shape d = p.dims();
  const std::vector<double> err = row_l2_errors(out.cview(), pc.reference().cview());
  REQUIRE(eb->out_l2.size() == err.size());
  const double slack = 1e-5 * max_value_norm(p);
  int64_t over = 0;
  double worst = -1e30;
  for (size_t r = 0; r < err.size(); ++r) {
    if (!(err[r] <= eb->out_l2[r] * (1 + 1e-5) + slack)) ++over;
    worst = std::max(worst, err[r] - eb->out_l2[r]);
  }
  INFO(eb->description << ": rows over the bound " << over << ", max(err - bound) " << worst);
  CHECK(over == 0);
  if (eb->prob_l1.empty() || !be.capabilities().weights) return;
  REQUIRE(eb->prob_l1.size() == err.size());
  std::vector<float> w(static_cast<size_t>(d.n_q * d.n_k));
  int64_t l1_over = 0;
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.heads; ++h) {
      be.weights(p, b, h, w.data());
      const std::vector<float>& r = pc.reference_weights(b, h);
      for (int64_t i = 0; i < d.n_q; ++i) {
        const double l1 = row_l1(w.data() + i * d.n_k, r.data() + i * d.n_k, d.n_k);
        l1_over += !(l1 <= eb->prob_l1[static_cast<size_t>((b * d.heads + h) * d.n_q + i)] + 1e-5);
      }
    }
  INFO("probability rows over prob_l1: " << l1_over);
  CHECK(l1_over == 0);
}

// The keys a mask hides are never read: new random values for keys j >= cut(b) (beyond the
// key_lengths of b, and under causal also beyond the middle key) leave every row that sees only
// keys < cut(b) unchanged (up to rounding: a backend may use a global constant over all keys).
void check_hidden_keys_unread(const Backend& be, Prepared& pc, const Tensor& out) {
  const Problem& p = pc.o.p;
  const Shape d = p.dims();
  std::vector<int64_t> cut(static_cast<size_t>(d.batch), d.n_k);
  for (int64_t b = 0; b < d.batch; ++b) {
    if (!p.mask.key_lengths.empty()) cut[size_t(b)] = p.mask.key_lengths[size_t(b)];
    if (p.mask.causal) cut[size_t(b)] = std::min<int64_t>(cut[size_t(b)], d.n_k / 2);
  }
  auto keep = [&](int64_t b, int64_t, int64_t i) { return p.key_end(b, i) <= cut[size_t(b)]; };
  bool any_row = false, any_key = false;
  for (int64_t b = 0; b < d.batch; ++b) {
    any_key |= cut[size_t(b)] < d.n_k;
    for (int64_t i = 0; i < d.n_q; ++i) any_row |= keep(b, 0, i);
  }
  if (!any_row || !any_key) return;
  Tensor k = pc.o.k.clone(), v = pc.o.v.clone(), out2(d.batch, d.heads, d.n_q, d.d_v);
  std::mt19937_64 rng(99);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t g = 0; g < d.kv_heads; ++g)
      for (int64_t j = cut[size_t(b)]; j < d.n_k; ++j) {
        for (int64_t c = 0; c < d.d; ++c) k.view().at(b, g, j, c) = nd(rng);
        for (int64_t c = 0; c < d.d_v; ++c) v.view().at(b, g, j, c) = 3.0f * nd(rng);
      }
  Problem q = p;
  q.k = k.cview();
  q.v = v.cview();
  q.out = out2.view();
  be.forward(q);
  const double diff = rel_diff_rows(out2.cview(), out.cview(), keep);
  INFO("hidden keys changed: rows that cannot see them differ by rel " << diff);
  // A backend may declare that under a causal mask future keys decide which visible keys a row
  // attends to (lsh's bucket sort, adaptive.hpp); padding keys (key_lengths) never count.
  if (!be.capabilities().causal_future_independent && p.mask.causal) {
    CHECK(std::isfinite(diff));
    return;
  }
  CHECK(diff <= 1e-5);
}

// The same data in [B,N,H,D] storage (what a projection produces) gives the dense layout's output.
void check_strided(const Backend& be, Prepared& pc, const Tensor& out) {
  const Problem& p = pc.o.p;
  const Shape d = p.dims();
  std::vector<float> q(size_t(d.batch * d.n_q * d.heads * d.d)), k(size_t(d.batch * d.n_k * d.kv_heads * d.d)),
      v(size_t(d.batch * d.n_k * d.kv_heads * d.d_v)), o(size_t(d.batch * d.n_q * d.heads * d.d_v));
  Problem s = p;
  s.q = ConstView::bnhd(q.data(), d.batch, d.n_q, d.heads, d.d);
  s.k = ConstView::bnhd(k.data(), d.batch, d.n_k, d.kv_heads, d.d);
  s.v = ConstView::bnhd(v.data(), d.batch, d.n_k, d.kv_heads, d.d_v);
  s.out = MutView::bnhd(o.data(), d.batch, d.n_q, d.heads, d.d_v);
  auto copy = [](ConstView from, ConstView to) {
    for (int64_t b = 0; b < from.batch(); ++b)
      for (int64_t h = 0; h < from.heads(); ++h)
        for (int64_t i = 0; i < from.seq(); ++i)
          std::memcpy(const_cast<float*>(to.row(b, h, i)), from.row(b, h, i), size_t(from.dim()) * 4);
  };
  copy(p.q, s.q);
  copy(p.k, s.k);
  copy(p.v, s.v);
  be.forward(s);
  const double diff = rel_diff_rows(ConstView(s.out), out.cview(), [](int64_t, int64_t, int64_t) { return true; });
  INFO("[B,N,H,D] layout vs dense: rel " << diff);
  CHECK(diff <= 1e-5);
}

}  // namespace

TEST_CASE("conformance: the specs under test", "[conformance]") {
  // Every built backend is here, and its default capabilities are the ones its info announces.
  REQUIRE(specs().size() >= list_backends().size());
  for (const BackendInfo& info : list_backends()) {
    INFO(info.name);
    const Capabilities c = make_backend(info.name)->capabilities();
    CHECK(c.causal == info.caps.causal);
    CHECK(c.key_lengths == info.caps.key_lengths);
    CHECK(c.cross == info.caps.cross);
    CHECK(c.gqa == info.caps.gqa);
    CHECK(c.weights == info.caps.weights);
  }
  for (const std::string& s : specs()) {
    INFO(s);
    CHECK(make_backend(s)->spec() == s);  // the canonical spec recreates the backend
  }
}

TEST_CASE("conformance: masks, key lengths, GQA and cross-attention on every backend", "[conformance]") {
  for (const std::string& spec : specs()) {
    const auto be = make_backend(spec);
    const Capabilities caps = be->capabilities();
    for (auto& pc : cases()) {
      INFO(spec << " | " << pc->c.name());
      Problem& p = pc->o.p;
      const std::string missing = pc->c.missing(caps);
      if (!missing.empty()) {
        // A capability it lacks: attnkit::Error naming it, from forward and weights alike.
        CHECK_THROWS_AS(be->forward(p), Error);
        CHECK_THROWS_WITH(be->forward(p), Catch::Contains(missing));
        std::vector<float> w(size_t(pc->c.nq * pc->c.nk));
        if (caps.weights) CHECK_THROWS_WITH(be->weights(p, 0, 0, w.data()), Catch::Contains(missing));
        // error_bound: refuses the same way, or has no bound at all
        bool refused = false;
        try {
          refused = !be->error_bound(p).has_value();
        } catch (const Error& e) {
          refused = std::string(e.what()).find(missing) != std::string::npos;
        }
        CHECK(refused);
        continue;
      }
      std::fill(pc->o.out.data(), pc->o.out.data() + pc->o.out.numel(), NAN);  // every row must be written
      be->forward(p);
      const Tensor out = pc->o.out.clone();
      const Shape d = p.dims();
      int64_t non_finite = 0, nonzero_blind = 0;
      for (int64_t b = 0; b < d.batch; ++b)
        for (int64_t h = 0; h < d.heads; ++h)
          for (int64_t i = 0; i < d.n_q; ++i)
            for (int64_t c = 0; c < d.d_v; ++c) {
              const float x = out.view().at(b, h, i, c);
              non_finite += !std::isfinite(x);
              nonzero_blind += p.key_end(b, i) == 0 && x != 0.0f;  // a row that sees no key is zero
            }
      CHECK(non_finite == 0);
      CHECK(nonzero_blind == 0);
      if (is_exact(spec)) {
        const double e = compare(out.cview(), pc->reference().cview()).rel_fro;
        INFO("exact backend vs reference: rel_fro " << e);
        CHECK(e <= 2e-6);
      }
      if (caps.weights) {
        const double e = check_weights(*be, *pc, out);
        INFO("forward vs weights * V: rel " << e);
        CHECK(e <= 2e-5);
      } else {
        std::vector<float> w(size_t(pc->c.nq * pc->c.nk));
        CHECK_THROWS_AS(be->weights(p, 0, 0, w.data()), Error);
      }
      check_bound(*be, *pc, out);
      check_hidden_keys_unread(*be, *pc, out);
      if (pc->c.nq <= 45) check_strided(*be, *pc, out);
    }
  }
}

TEST_CASE("conformance: bit-identical output for 1 and 2 OpenMP threads and a fresh object", "[conformance]") {
  for (const std::string& spec : specs()) {
    const auto be = make_backend(spec);
    const Capabilities caps = be->capabilities();
    // A mid-sized batch of heads, and one long (kv) head: the shape where backends split one head's
    // rows or keys across threads (e.g. kernelized's segments: > 2048 query rows, > 1024 keys).
    struct S { int64_t B, H, Hkv, nq, nk, d; };
    const S shapes[] = {{2, 3, 3, 300, 300, 32},
                        {1, 2, caps.gqa ? 1 : 2, 2100, caps.cross ? 2300 : 2100, 8}};
    for (const S& s : shapes)
      for (bool causal : {false, true}) {
        if (causal && !caps.causal) continue;
        Owned o(s.B, s.H, s.Hkv, s.nq, s.nk, s.d, s.d, 77 + s.nq);
        o.p.mask.causal = causal;
        if (caps.key_lengths) o.p.mask.key_lengths.assign(size_t(s.B), static_cast<int32_t>(s.nk - 10));
        INFO(spec << " B=" << s.B << " H=" << s.H << " Hkv=" << s.Hkv << " nq=" << s.nq << " nk=" << s.nk
                  << " causal=" << causal);
        Tensor one, two;
        {
          ThreadCount tc(1);
          be->forward(o.p);
          one = o.out.clone();
        }
        {
          ThreadCount tc(2);
          be->forward(o.p);
          two = o.out.clone();
          make_backend(spec)->forward(o.p);
        }
        CHECK(same_bits(one, two));
        CHECK(same_bits(one, o.out));
        if (s.nq > 1000 && caps.weights && !attnkit::test::sanitized()) {
          // the long head's split paths compute the same attention as the weights say (a check of
          // values, and 2/3 of this test's time under the sanitizer: the release stage runs it)
          Prepared pc({s.B, s.H, s.Hkv, s.nq, s.nk, s.d, s.d, causal, o.p.mask.key_lengths}, 77 + s.nq);
          const double e = check_weights(*be, pc, one);
          INFO("forward vs weights * V: rel " << e);
          CHECK(e <= 2e-5);
        }
      }
  }
}

TEST_CASE("conformance: one backend object used by 8 std::threads at once equals serial calls", "[conformance]") {
  for (const std::string& spec : specs()) {
    const auto be = make_backend(spec);
    const Capabilities caps = be->capabilities();
    INFO(spec);
    std::vector<std::unique_ptr<Owned>> probs;
    std::vector<Tensor> serial;
    for (int t = 0; t < 8; ++t) {
      const int64_t nq = 100 + 13 * t, nk = caps.cross && t % 2 ? nq + 17 : nq;
      probs.push_back(std::make_unique<Owned>(2, 2, caps.gqa && t % 3 == 0 ? 1 : 2, nq, nk, 32, 24, 100 + t));
      probs.back()->p.mask.causal = caps.causal && t % 4 < 2;
      if (caps.key_lengths && t % 3 == 1) probs.back()->p.mask.key_lengths = {static_cast<int32_t>(nk / 2), 0};
      be->forward(probs.back()->p);
      serial.push_back(probs.back()->out.clone());
      std::memset(probs.back()->out.data(), 0, static_cast<size_t>(probs.back()->out.numel()) * 4);
    }
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) threads.emplace_back([&, t] { be->forward(probs[size_t(t)]->p); });
    for (auto& th : threads) th.join();
    for (int t = 0; t < 8; ++t) CHECK(same_bits(probs[size_t(t)]->out, serial[size_t(t)]));
  }
}

TEST_CASE("conformance: zero and overlapping row strides on inputs give the output of dense copies", "[conformance]") {
  // A one-row axis with stride 0 (the Python module's layout for a size-1 axis), keys broadcast
  // along the sequence (stride 0, np.broadcast_to) and overlapping rows (stride < d) are valid
  // inputs; a backend that hands them to BLAS as its leading dimension got an illegal call that
  // OpenBLAS skips (zeros, no error). Each must equal the same values stored densely.
  const int64_t H = 2, d = 8, dv = 8;
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  struct Layout {
    const char* name;
    int64_t nq, nk, sq, sk, sv;  // seq strides of q, k, v (0 = broadcast, < d = overlapping)
  };
  const Layout layouts[] = {{"one query row, stride 0", 1, 16, 0, d, dv},
                            {"keys broadcast (stride 0), overlapping values (stride 2)", 16, 16, d, 0, 2},
                            {"overlapping queries and keys (stride 1)", 12, 12, 1, 1, dv}};
  for (const Layout& L : layouts) {
    // Buffers big enough for the strided views: head h starts at h * 64.
    std::vector<float> qb(size_t(H * 64 + L.nq * d)), kb(size_t(64 + L.nk * d)), vb(size_t(64 + L.nk * dv));
    for (auto* buf : {&qb, &kb, &vb})
      for (float& x : *buf) x = nd(rng);
    auto view = [](const std::vector<float>& b, int64_t heads, int64_t n, int64_t dim, int64_t s) {
      ConstView v;
      v.data = b.data();
      v.shape = {1, heads, n, dim};
      v.stride = {heads * 64 + n * dim, 64, s, 1};
      return v;
    };
    Problem strided;
    strided.q = view(qb, H, L.nq, d, L.sq);
    strided.k = view(kb, 1, L.nk, d, L.sk);
    strided.v = view(vb, 1, L.nk, dv, L.sv);
    Tensor q(1, H, L.nq, d), k(1, 1, L.nk, d), v(1, 1, L.nk, dv);
    for (auto [from, to] : {std::pair{strided.q, &q}, std::pair{strided.k, &k}, std::pair{strided.v, &v}})
      for (int64_t h = 0; h < from.heads(); ++h)
        for (int64_t i = 0; i < from.seq(); ++i) std::memcpy(to->view().row(0, h, i), from.row(0, h, i), size_t(from.dim()) * 4);
    Problem dense = strided;
    dense.q = q.cview();
    dense.k = k.cview();
    dense.v = v.cview();
    Tensor out_s(1, H, L.nq, dv), out_d(1, H, L.nq, dv);
    MutView os = out_s.view();
    if (L.nq == 1) os.stride[2] = 0;  // a one-row output axis with stride 0 too
    strided.out = os;
    dense.out = out_d.view();
    for (const std::string& spec : specs()) {
      const auto be = make_backend(spec);
      if (L.nq != L.nk && !be->capabilities().cross) continue;
      INFO(spec << " | " << L.name);
      be->forward(dense);
      be->forward(strided);
      const double diff = compare(out_s.cview(), out_d.cview()).rel_fro;
      INFO("strided vs dense: rel " << diff);
      CHECK(diff <= 1e-5);
      if (be->capabilities().weights) {
        std::vector<float> ws(size_t(L.nq * L.nk)), wd(ws.size());
        be->weights(strided, 0, 1, ws.data());
        be->weights(dense, 0, 1, wd.data());
        double num = 0, den = 0;
        for (size_t i = 0; i < ws.size(); ++i) {
          num += double(ws[i] - wd[i]) * (ws[i] - wd[i]);
          den += double(wd[i]) * wd[i];
        }
        INFO("weights strided vs dense: rel " << std::sqrt(num / den));
        CHECK(std::sqrt(num / den) <= 1e-5);
      }
    }
  }
}
