// Decode over a KV cache (attnkit/decode.hpp): token-by-token decoding equals the causal forward
// of the matching backend on the whole sequence; compressed storages stay within their error
// bounds against fp64; bad input throws attnkit::Error and leaves the cache usable.
#include <omp.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "attnkit/decode.hpp"
#include "attnkit/error.hpp"
#include "attnkit/inputs.hpp"
#include "attnkit/kv_cache.hpp"
#include "attnkit/registry.hpp"
#include "attnkit_config.hpp"

using namespace attnkit;

namespace {

struct Seq {
  Tensor q, k, v;  // q [B,H,N,d], k/v [B,G,N,d]
};

Seq make_seq(int64_t B, int64_t H, int64_t G, int64_t N, int64_t d, uint64_t seed,
             InputFamily fam = InputFamily::Gaussian) {
  Seq s;
  s.q = generate(fam, B, H, N, d, seed).q;
  Inputs kv = generate(fam, B, G, N, d, seed + 1);
  s.k = std::move(kv.k);
  s.v = std::move(kv.v);
  return s;
}

ConstView slice(ConstView x, int64_t p0, int64_t p1) {
  x.data += p0 * x.stride[2];
  x.shape[2] = p1 - p0;
  return x;
}
MutView slice(MutView x, int64_t p0, int64_t p1) {
  x.data += p0 * x.stride[2];
  x.shape[2] = p1 - p0;
  return x;
}

// Causal forward of `spec` over the whole sequence.
Tensor forward(const std::string& spec, const Seq& s, const std::vector<int32_t>& key_lengths = {}) {
  Tensor out(s.q.shape()[0], s.q.shape()[1], s.q.shape()[2], s.v.shape()[3]);
  Problem p;
  p.q = s.q.view();
  p.k = s.k.view();
  p.v = s.v.view();
  p.out = out.view();
  p.mask.causal = true;
  p.mask.key_lengths = key_lengths;
  make_backend(spec)->forward(p);
  return out;
}

DecodeConfig config_for(const Seq& s, KvStorage storage = KvStorage::F32, int64_t max_step = 1) {
  DecodeConfig c;
  c.batch = s.q.shape()[0];
  c.heads = s.q.shape()[1];
  c.kv_heads = s.k.shape()[1];
  c.d = s.q.shape()[3];
  c.d_v = s.v.shape()[3];
  c.capacity = s.q.shape()[2];
  c.max_step = max_step;
  c.storage = storage;
  return c;
}

// Fills the cache with the first N - S positions, then decodes the last S, t at a time.
Tensor decode_last(Decoder& dec, const Seq& s, int64_t S, int64_t t = 1) {
  const int64_t N = s.q.shape()[2];
  Tensor out(s.q.shape()[0], s.q.shape()[1], S, s.v.shape()[3]);
  if (N - S > 0) dec.append(slice(s.k.cview(), 0, N - S), slice(s.v.cview(), 0, N - S));
  for (int64_t a = N - S; a < N; a += t) {
    const int64_t e = std::min(N, a + t);
    dec.append(slice(s.k.cview(), a, e), slice(s.v.cview(), a, e));
    dec.attend(slice(s.q.cview(), a, e), slice(out.view(), a - (N - S), e - (N - S)));
  }
  return out;
}

// max |out[b,h,s] - ref[b,h,N-S+s]|
double max_diff_last(const Tensor& out, const Tensor& ref) {
  const int64_t S = out.shape()[2], N = ref.shape()[2];
  double m = 0;
  for (int64_t b = 0; b < out.shape()[0]; ++b)
    for (int64_t h = 0; h < out.shape()[1]; ++h)
      for (int64_t s = 0; s < S; ++s) {
        const float* o = out.view().row(b, h, s);
        const float* r = ref.view().row(b, h, N - S + s);
        for (int64_t c = 0; c < out.shape()[3]; ++c) m = std::max(m, std::fabs(static_cast<double>(o[c]) - r[c]));
      }
  return m;
}

// Relative Frobenius error of the decoded rows against an fp64 causal reference.
double rel_err_fp64(const Tensor& out, const Seq& s, int64_t S) {
  const int64_t B = s.q.shape()[0], H = s.q.shape()[1], G = s.k.shape()[1], N = s.q.shape()[2];
  const int64_t d = s.q.shape()[3], dv = s.v.shape()[3];
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  double num = 0, den = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t pos = N - S + i, g = h / (H / G);
        std::vector<double> sc(static_cast<size_t>(pos + 1));
        double mx = -INFINITY;
        for (int64_t j = 0; j <= pos; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < d; ++c) dot += static_cast<double>(s.q.view().at(b, h, pos, c)) * s.k.view().at(b, g, j, c);
          sc[static_cast<size_t>(j)] = dot * scale;
          mx = std::max(mx, dot * scale);
        }
        double l = 0;
        std::vector<double> acc(static_cast<size_t>(dv), 0.0);
        for (int64_t j = 0; j <= pos; ++j) {
          const double p = std::exp(sc[static_cast<size_t>(j)] - mx);
          l += p;
          for (int64_t c = 0; c < dv; ++c) acc[static_cast<size_t>(c)] += p * s.v.view().at(b, g, j, c);
        }
        for (int64_t c = 0; c < dv; ++c) {
          const double r = acc[static_cast<size_t>(c)] / l, o = out.view().at(b, h, i, c);
          num += (o - r) * (o - r);
          den += r * r;
        }
      }
  return std::sqrt(num / den);
}

}  // namespace

TEST_CASE("exact decode equals the causal forward on the whole sequence", "[decode][exact]") {
  // B=2, H=8, G=2; N > 1024 crosses split-K chunks; t = 1 and t = 3 new tokens per attend.
  for (auto [N, S] : {std::pair<int64_t, int64_t>{37, 5}, {300, 17}, {2100, 4}}) {
    const Seq s = make_seq(2, 8, 2, N, 32, static_cast<uint64_t>(N));
    const Tensor ref = forward("exact", s);
    for (int64_t t : {1, 3}) {
      Decoder dec("exact", config_for(s));
      const Tensor out = decode_last(dec, s, S, t);
      INFO("N=" << N << " S=" << S << " t=" << t);
      CHECK(max_diff_last(out, ref) <= 1e-6);
      CHECK(dec.size() == N);
      CHECK(dec.bytes_read() == 2 * 2 * N * 2 * 32 * 4);  // last attend read every row of K and V
    }
  }
}

TEST_CASE("decode with d and d_v not multiples of the vector width, every storage, exact and pages", "[decode][storage]") {
  // d = 20, d_v = 12: the kernels' scalar tails (QK, PV); t = 3 new tokens per attend
  // (12 query rows of a group of 4); N = 301: a partial last tile and page.
  const int64_t N = 301, S = 6;
  Seq s = make_seq(1, 8, 2, N, 20, 81);
  s.v = generate(InputFamily::Gaussian, 1, 2, N, 12, 82).v;
  const Tensor ref = forward("exact", s);
  for (const std::string spec : {"exact", "pages:page=16,keep=100000", "pages:page=16,keep=64"}) {
    for (auto [st, bound] : {std::pair{KvStorage::F32, 1e-5}, {KvStorage::BF16, 1e-2}, {KvStorage::Int8, 3e-2}}) {
      Decoder dec(spec, config_for(s, st));
      const Tensor out = decode_last(dec, s, S, 3);
      INFO(spec << " " << kv_storage_name(st));
      if (spec == "pages:page=16,keep=64") {
        // 4 pages + the newest: a subset of the keys, so not exact; the bound of every page it
        // dropped was checked by the selection; here only that it ran and chose 4 + 1 pages.
        CHECK(dec.selected_pages(0, 1).size() == 5);
        continue;
      }
      const double err = rel_err_fp64(out, s, S);
      CHECK(err <= bound);
      if (st == KvStorage::F32) CHECK(max_diff_last(out, ref) <= 1e-6);
    }
  }
}

TEST_CASE("decode with a key_lengths mask, from an empty cache, equals the masked causal forward", "[decode][mask]") {
  const int64_t N = 90, S = 90;
  const Seq s = make_seq(2, 8, 2, N, 16, 3);
  const std::vector<int32_t> lengths{50, 0};
  // {decode spec, forward spec}: pages keeping every page is exact attention.
  for (auto [spec, fwd] : {std::pair<std::string, std::string>{"exact", "exact"},
                           {"pages:page=8,keep=1000", "exact"},
                           {"local:window=20", "local:window=20"},
                           {"linear", "linear"}}) {
    if ((fwd == "linear" && !ATTNKIT_HAS_KERNELIZED) || (fwd.rfind("local", 0) == 0 && !ATTNKIT_HAS_LOCAL)) continue;
    const Tensor ref = forward(fwd, s, lengths);
    DecodeConfig cfg = config_for(s);
    cfg.key_lengths = lengths;
    Decoder dec(spec, cfg);
    const Tensor out = decode_last(dec, s, S);
    INFO(spec);
    CHECK(max_diff_last(out, ref) <= (spec == "linear" ? 1e-5 : 1e-6));
    for (int64_t h = 0; h < 8; ++h) CHECK(out.view().at(1, h, 10, 3) == 0.0f);  // sees nothing
  }
}

TEST_CASE("key_lengths masks hold for every storage of every cache backend", "[decode][mask][storage]") {
  const int64_t N = 70, S = 70;
  const Seq s = make_seq(2, 8, 2, N, 32, 4);
  const std::vector<int32_t> lengths{33, 0};
  const Tensor ref = forward("exact", s, lengths);
  for (const std::string spec : {"exact", "pages:page=8,keep=1000", "local:window=100"}) {
    if (spec.rfind("local", 0) == 0 && !ATTNKIT_HAS_LOCAL) continue;
    for (auto [st, tol] : {std::pair{KvStorage::BF16, 3e-2}, {KvStorage::Int8, 1e-1}}) {
      DecodeConfig cfg = config_for(s, st);
      cfg.key_lengths = lengths;
      Decoder dec(spec, cfg);
      const Tensor out = decode_last(dec, s, S);
      INFO(spec << " " << kv_storage_name(st));
      // Batch 0 sees positions < 33 only (the window of 100 covers them all): within the storage's
      // rounding of the masked result; batch 1 sees nothing: exact zeros.
      double e0 = 0, e1 = 0;
      for (int64_t h = 0; h < 8; ++h)
        for (int64_t i = 0; i < S; ++i)
          for (int64_t c = 0; c < 32; ++c) {
            e0 = std::max(e0, std::fabs(double(out.view().at(0, h, i, c)) - ref.view().at(0, h, i, c)));
            e1 = std::max(e1, std::fabs(double(out.view().at(1, h, i, c))));
          }
      CHECK(e0 <= tol);
      CHECK(e0 > 0);  // compressed: not the f32 result
      CHECK(e1 == 0.0);
    }
  }
}

TEST_CASE("exact and pages decode are bit-identical for 1 and 2 threads", "[decode][exact][pages]") {
  const Seq s = make_seq(1, 4, 2, 3000, 64, 5);
  const int saved = omp_get_max_threads();
  for (const std::string spec : {"exact", "pages:page=16,keep=512"})
    for (KvStorage st : {KvStorage::BF16, KvStorage::Int8}) {
    std::vector<Tensor> outs;
    std::vector<std::vector<int64_t>> sel;
    for (int th : {1, 2}) {
      omp_set_num_threads(th);
      Decoder dec(spec, config_for(s, st));
      outs.push_back(decode_last(dec, s, 3));
      sel.push_back(dec.selected_pages(0, 1));
    }
    INFO(spec << " " << kv_storage_name(st));
    CHECK(std::memcmp(outs[0].data(), outs[1].data(), static_cast<size_t>(outs[0].numel()) * 4) == 0);
    CHECK(sel[0] == sel[1]);
  }
  omp_set_num_threads(saved);
}

#if ATTNKIT_HAS_LOCAL
TEST_CASE("local decode equals the causal local forward; its ring holds O(window)", "[decode][local]") {
  const int64_t N = 500, S = 40;
  const Seq s = make_seq(2, 8, 2, N, 32, 11);
  for (int64_t w : {1, 7, 64, 600}) {
    const std::string spec = "local:window=" + std::to_string(w);
    const Tensor ref = forward(spec, s);
    for (int64_t t : {1, 2}) {
      Decoder dec(spec, config_for(s, KvStorage::F32, t));
      const Tensor out = decode_last(dec, s, S, t);
      INFO(spec << " t=" << t);
      CHECK(max_diff_last(out, ref) <= 1e-6);
      CHECK(dec.spec() == spec);
      CHECK(dec.bytes() == 2 * 2 * (w + t - 1) * 2 * 32 * 4);
    }
  }
}

#endif

TEST_CASE("pages decode: all pages = exact; fewer pages = exact attention over the selected pages", "[decode][pages]") {
  const int64_t N = 700, S = 6;
  const Seq s = make_seq(2, 8, 2, N, 32, 21, InputFamily::Local);
  const Tensor ref = forward("exact", s);
  for (KvStorage st : {KvStorage::F32, KvStorage::BF16, KvStorage::Int8}) {
    Decoder all("pages:page=16,keep=100000", config_for(s, st));
    Decoder ex("exact", config_for(s, st));
    const Tensor a = decode_last(all, s, S), e = decode_last(ex, s, S);
    CHECK(max_diff_last(a, e) <= 1e-6);  // both hold the S decoded rows
  }
  // keep = 64 keys: 4 best pages of 16, plus the newest page.
  Decoder dec("pages:page=16,keep=64", config_for(s));
  CHECK(dec.spec() == "pages:page=16,keep=64");
  const Tensor out = decode_last(dec, s, 1);
  const int64_t pos = N - 1, scale_d = 32;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t g = 0; g < 2; ++g) {
      const std::vector<int64_t> sel = dec.selected_pages(b, g);
      REQUIRE(sel.size() == 5);
      CHECK(sel.back() == pos / 16);
      for (int64_t hl = 0; hl < 4; ++hl) {
        const int64_t h = g * 4 + hl;
        std::vector<double> sc, acc(32, 0.0);
        std::vector<int64_t> keys;
        for (int64_t p : sel)
          for (int64_t j = p * 16; j < std::min<int64_t>(pos + 1, p * 16 + 16); ++j) keys.push_back(j);
        double mx = -INFINITY;
        for (int64_t j : keys) {
          double dot = 0;
          for (int64_t c = 0; c < 32; ++c) dot += double(s.q.view().at(b, h, pos, c)) * s.k.view().at(b, g, j, c);
          sc.push_back(dot / std::sqrt(double(scale_d)));
          mx = std::max(mx, sc.back());
        }
        double l = 0;
        for (size_t i = 0; i < keys.size(); ++i) {
          const double p = std::exp(sc[i] - mx);
          l += p;
          for (int64_t c = 0; c < 32; ++c) acc[size_t(c)] += p * s.v.view().at(b, g, keys[i], c);
        }
        for (int64_t c = 0; c < 32; ++c) CHECK(std::fabs(out.view().at(b, h, 0, c) - acc[size_t(c)] / l) <= 1e-5);
      }
    }
}

TEST_CASE("pages: the Quest bound keeps the page of a planted matching key", "[decode][pages]") {
  // One key far in the past equals the last query (scaled up): its page must be selected.
  const int64_t N = 512;
  Seq s = make_seq(1, 1, 1, N, 16, 31);
  for (int64_t c = 0; c < 16; ++c) s.k.view().at(0, 0, 77, c) = 4.0f * s.q.view().at(0, 0, N - 1, c);
  for (KvStorage st : {KvStorage::F32, KvStorage::BF16, KvStorage::Int8}) {
    Decoder dec("pages:page=16,keep=16", config_for(s, st));
    decode_last(dec, s, 1);
    const std::vector<int64_t> sel = dec.selected_pages(0, 0);
    INFO(kv_storage_name(st));
    REQUIRE(sel.size() == 2);
    CHECK(sel[0] == 77 / 16);
  }
}

// The bfloat16 at or below (up = false) / above (up = true) a finite x: how pages stores a page's
// per-channel min and max.
double bf16_bracket(float x, bool up) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  uint32_t t = u & 0xffff0000u;  // toward zero
  if (t != u && (up == (x > 0))) t += 0x10000u;
  float f;
  std::memcpy(&f, &t, 4);
  return f;
}

TEST_CASE("pages: the kept pages are the best by the Quest bound (fp64 oracle of the bf16 bounds)", "[decode][pages]") {
  // 62 competing pages of 16 (blocks of 16 pages in the bound layout, the last one partial), the
  // cache filled 7 positions per append (pages widened across calls), then one attend of t tokens;
  // page = 2: 499 competing pages, two scan work items of 256 pages (the second partial).
  const int64_t N = 1000, d = 32, keep_pages = 10;
  const Seq s = make_seq(2, 8, 2, N, d, 61);
  for (const auto& [P, t] : {std::pair<int64_t, int64_t>{16, 1}, {16, 3}, {2, 1}}) {
    Decoder dec("pages:page=" + std::to_string(P) + ",keep=" + std::to_string(keep_pages * P),
                config_for(s, KvStorage::F32, t));
    for (int64_t a = 0; a < N - t; a += 7) {
      const int64_t e = std::min(a + 7, N - t);
      dec.append(slice(s.k.cview(), a, e), slice(s.v.cview(), a, e));
    }
    Tensor o(2, 8, t, d);
    dec.append(slice(s.k.cview(), N - t, N), slice(s.v.cview(), N - t, N));
    dec.attend(slice(s.q.cview(), N - t, N), o.view());
    const int64_t cand = (N - t) / P;  // the pages of the new tokens are always read
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t g = 0; g < 2; ++g) {
        // score(page) = max over the group's rows of (bound − the row's best bound); tol covers
        // the float sums (scale: Σ_c |q_c|·max(|lo_c|, |hi_c|)).
        std::vector<double> score(static_cast<size_t>(cand), -INFINITY);
        double tol = 0;
        for (int64_t hl = 0; hl < 4; ++hl)
          for (int64_t i = 0; i < t; ++i) {
            std::vector<double> bound(static_cast<size_t>(cand));
            for (int64_t p = 0; p < cand; ++p) {
              double sum = 0, mag = 0;
              for (int64_t c = 0; c < d; ++c) {
                float lo = INFINITY, hi = -INFINITY;
                for (int64_t j = p * P; j < p * P + P; ++j) {
                  lo = std::min(lo, s.k.view().at(b, g, j, c));
                  hi = std::max(hi, s.k.view().at(b, g, j, c));
                }
                const double l = bf16_bracket(lo, false), h = bf16_bracket(hi, true);
                const double qc = s.q.view().at(b, g * 4 + hl, N - t + i, c) / std::sqrt(double(d));
                sum += std::max(qc * l, qc * h);
                mag += std::fabs(qc) * std::max(std::fabs(l), std::fabs(h));
              }
              bound[size_t(p)] = sum;
              tol = std::max(tol, 1e-5 * mag);
            }
            const double top = *std::max_element(bound.begin(), bound.end());
            for (int64_t p = 0; p < cand; ++p) score[size_t(p)] = std::max(score[size_t(p)], bound[size_t(p)] - top);
          }
        const std::vector<int64_t> sel = dec.selected_pages(b, g);
        INFO("page=" << P << " t=" << t << " b=" << b << " g=" << g);
        REQUIRE(int64_t(sel.size()) == keep_pages + (N - 1) / P - cand + 1);
        std::vector<bool> kept(static_cast<size_t>(cand), false);
        for (int64_t k = 0; k < keep_pages; ++k) {
          REQUIRE(sel[size_t(k)] < cand);
          kept[size_t(sel[size_t(k)])] = true;
        }
        for (int64_t k = keep_pages; k < int64_t(sel.size()); ++k) CHECK(sel[size_t(k)] == cand + k - keep_pages);
        double worst_kept = INFINITY, best_dropped = -INFINITY;
        for (int64_t p = 0; p < cand; ++p) {
          if (kept[size_t(p)])
            worst_kept = std::min(worst_kept, score[size_t(p)]);
          else
            best_dropped = std::max(best_dropped, score[size_t(p)]);
        }
        INFO("tol " << tol << " worst kept " << worst_kept << " best dropped " << best_dropped);
        CHECK(best_dropped <= worst_kept + 2 * tol);
      }
  }
}

#if ATTNKIT_HAS_KERNELIZED
TEST_CASE("performer and linear decode equal their causal forward", "[decode][kernelized]") {
  const int64_t N = 200, S = 9;
  const Seq s = make_seq(2, 8, 2, N, 16, 41, InputFamily::Diffuse);
  for (const std::string spec : {"performer:features=64,seed=3", "linear"}) {
    const Tensor ref = forward(spec, s);
    for (int64_t t : {1, 3}) {
      Decoder dec(spec, config_for(s, KvStorage::F32, t));
      const Tensor out = decode_last(dec, s, S, t);
      INFO(spec << " t=" << t);
      CHECK(max_diff_last(out, ref) <= 1e-5);
    }
  }
  CHECK_THROWS_WITH(Decoder("linear", config_for(s, KvStorage::Int8)), Catch::Contains("expected f32"));
  Decoder dec("linear", config_for(s));
  decode_last(dec, s, 1);
  Tensor o(2, 8, 1, 16);
  CHECK_THROWS_WITH(dec.attend(slice(s.q.cview(), N - 1, N), o.view()), Catch::Contains("not yet absorbed"));
}

TEST_CASE("linear decode: a query whose features underflow float32 throws, naming it, and the decoder is lost", "[decode][kernelized][errors]") {
  // q = k = -50 in every channel: elu+1 features e^-50, their products (e^-100) flush to zero.
  DecodeConfig cfg;
  cfg.batch = 1, cfg.heads = 2, cfg.kv_heads = 1, cfg.d = 4, cfg.d_v = 4, cfg.capacity = 8;
  Decoder dec("linear", cfg);
  Tensor q(1, 2, 1, 4), k(1, 1, 1, 4), v(1, 1, 1, 4), o(1, 2, 1, 4);
  for (int64_t c = 0; c < 4; ++c) {
    k.view().at(0, 0, 0, c) = -50.0f;
    v.view().at(0, 0, 0, c) = 1.0f;
    q.view().at(0, 0, 0, c) = 0.5f;  // head 0: features 1.5 against e^-50: fine
    q.view().at(0, 1, 0, c) = -50.0f;
  }
  Decoder ok("linear", cfg);
  q.view().at(0, 1, 0, 0) = 0.5f;
  ok.step(q.cview(), k.cview(), v.cview(), o.view());
  CHECK(o.view().at(0, 0, 0, 2) == Approx(1.0f));
  q.view().at(0, 1, 0, 0) = -50.0f;
  CHECK_THROWS_WITH(dec.step(q.cview(), k.cview(), v.cview(), o.view()),
                    Catch::Contains("attend: batch 0, head 1, new position 0 of 1") && Catch::Contains("underflowed"));
  CHECK_THROWS_WITH(dec.step(q.cview(), k.cview(), v.cview(), o.view()), Catch::Contains("recurrent state was lost"));
}

#endif

TEST_CASE("bf16 and int8 storage: error vs fp64 within 1e-2 and 3e-2", "[decode][storage]") {
  const int64_t N = 600, S = 4;
  const Seq s = make_seq(1, 8, 2, N, 64, 51);
  for (const std::string spec : {"exact", "local:window=1000", "pages:page=16,keep=1000"}) {
    for (auto [st, bound] : {std::pair{KvStorage::F32, 1e-5}, {KvStorage::BF16, 1e-2}, {KvStorage::Int8, 3e-2}}) {
      Decoder dec(spec, config_for(s, st));
      const Tensor out = decode_last(dec, s, S);
      const double err = rel_err_fp64(out, s, S);
      INFO(spec << " " << kv_storage_name(st) << " rel err " << err);
      CHECK(err <= bound);
      if (st != KvStorage::F32) CHECK(err > 0);  // the storage really is compressed
    }
  }
}

// fp64 re-implementation of the int8 decode arithmetic (include/attnkit/decode.hpp, "int8
// storage"), for the last position N - 1 of (b, h) of exact decode over a cache of N positions:
// q·scale as int16 (scale max|q| / 32767, half to even), integer dot products with the stored int8
// keys times both scales; per tile of 128 positions (tiles start at multiples of 128) the weights
// w = exp(s - max) · v_scale as u8: round-half-even(w · 256 / G), at most 255, G the largest sum
// of the lane groups {0, 1, 4, 5} and {2, 3, 6, 7} of each 8 positions of the tile, times the int8
// values and G / 256. quantize_weights = false: the weights unrounded (what a float kernel would
// compute). ambiguous: set to the sum over weights whose scaled value lies within 5e-4 of a
// rounding boundary (float and fp64 may round those apart) of G / 256 · 127 / l, the most such a
// weight can move an output.
std::vector<double> int8_reference(const KvCache& c, const Tensor& q, int64_t b, int64_t h, int64_t H,
                                   bool quantize_weights = true, double* ambiguous = nullptr) {
  const int64_t N = c.size(), d = c.d(), dv = c.d_v(), g = h / (H / c.kv_heads());
  const auto* k8 = static_cast<const int8_t*>(c.keys(b, g));
  const auto* v8 = static_cast<const int8_t*>(c.values(b, g));
  const float *ks = c.key_scales(b, g), *vs = c.value_scales(b, g);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  std::vector<float> qs(static_cast<size_t>(d));
  float amax = 0;
  for (int64_t i = 0; i < d; ++i) {
    qs[static_cast<size_t>(i)] = q.view().at(b, h, N - 1, i) * scale;
    amax = std::max(amax, std::fabs(qs[static_cast<size_t>(i)]));
  }
  const float inv = 32767.0f / amax, qscale = amax / 32767.0f;
  std::vector<int32_t> q16(static_cast<size_t>(d));
  for (int64_t i = 0; i < d; ++i) q16[static_cast<size_t>(i)] = static_cast<int32_t>(std::nearbyint(qs[static_cast<size_t>(i)] * inv));
  std::vector<double> sc(static_cast<size_t>(N));
  double mx = -INFINITY;
  for (int64_t j = 0; j < N; ++j) {
    int64_t dot = 0;
    for (int64_t i = 0; i < d; ++i) dot += q16[static_cast<size_t>(i)] * int64_t{k8[j * d + i]};
    sc[static_cast<size_t>(j)] = static_cast<double>(dot) * qscale * ks[j];
    mx = std::max(mx, sc[static_cast<size_t>(j)]);
  }
  double l = 0, amb = 0;
  std::vector<double> out(static_cast<size_t>(dv), 0.0);
  for (int64_t t0 = 0; t0 < N; t0 += 128) {
    const int64_t t1 = std::min(N, t0 + 128);
    std::vector<double> w(128, 0.0);
    for (int64_t j = t0; j < t1; ++j) {
      const double e = std::exp(sc[static_cast<size_t>(j)] - mx);
      l += e;
      w[static_cast<size_t>(j - t0)] = e * vs[j];
    }
    double G = 0;
    for (size_t g8 = 0; g8 < 128; g8 += 8) {
      const double* x = w.data() + g8;
      G = std::max({G, x[0] + x[1] + x[4] + x[5], x[2] + x[3] + x[6] + x[7]});
    }
    for (int64_t j = t0; j < t1; ++j) {
      double wq = w[static_cast<size_t>(j - t0)];
      if (quantize_weights) {
        const double y = wq * 256.0 / G;
        if (std::fabs(y - std::floor(y) - 0.5) < 5e-4 && y < 255.0) amb += G / 256.0 * 127.0;
        wq = std::min(std::nearbyint(y), 255.0) * (G / 256.0);
      }
      for (int64_t i = 0; i < dv; ++i) out[static_cast<size_t>(i)] += wq * v8[j * dv + i];
    }
  }
  for (double& x : out) x /= l;
  if (ambiguous) *ambiguous = amb / l;
  return out;
}

TEST_CASE("int8 decode computes the documented integer arithmetic", "[decode][storage][int8]") {
  // N = 2100: three split-K chunks and a partial last tile (52 positions: a partial group of 8);
  // d = 64, d_v = 40 (a scalar channel tail of 8 in PV); peaked attention (InputFamily::Peaky).
  const int64_t N = 2100, H = 8, G = 2;
  Seq s = make_seq(1, H, G, N, 64, 71, InputFamily::Peaky);
  s.v = generate(InputFamily::Gaussian, 1, G, N, 40, 72).v;
  Decoder dec("exact", config_for(s, KvStorage::Int8));
  const Tensor out = decode_last(dec, s, 1);
  KvCache c(1, G, N, 64, 40, KvStorage::Int8);
  c.append(s.k.cview(), s.v.cview());
  double err = 0, err_float_weights = 0, ref_max = 0, ambiguous_max = 0;
  for (int64_t h = 0; h < H; ++h) {
    double ambiguous = 0;
    const std::vector<double> ref = int8_reference(c, s.q, 0, h, H, true, &ambiguous);
    const std::vector<double> reff = int8_reference(c, s.q, 0, h, H, false);
    ambiguous_max = std::max(ambiguous_max, ambiguous);
    for (int64_t i = 0; i < 40; ++i) {
      const double o = out.view().at(0, h, 0, i);
      // float rounding of the scores and accumulators, and the weights on a rounding boundary
      err = std::max(err, std::fabs(o - ref[static_cast<size_t>(i)]) - ambiguous);
      err_float_weights = std::max(err_float_weights, std::fabs(reff[static_cast<size_t>(i)] - ref[static_cast<size_t>(i)]));
      ref_max = std::max(ref_max, std::fabs(ref[static_cast<size_t>(i)]));
    }
  }
  INFO("max |out - ref| - ambiguous " << err << ", max |ref| " << ref_max << ", unrounded weights differ by "
                                      << err_float_weights << ", largest allowance for ambiguous weights " << ambiguous_max);
  CHECK(err <= 2e-6 * ref_max);
  CHECK(ambiguous_max < 0.25 * err_float_weights);  // the allowance is no excuse for another rounding
  CHECK(err_float_weights > 5e-6 * ref_max);  // the bound would notice unrounded weights
}

TEST_CASE("int8 decode with d above the integer kernel's limit runs the float kernel", "[decode][storage][int8]") {
  const int64_t N = 70, S = 3;
  const Seq s = make_seq(1, 4, 1, N, 520, 73);  // d = 520 > 512: int32 sums could overflow
  Decoder dec("exact", config_for(s, KvStorage::Int8));
  const Tensor out = decode_last(dec, s, S);
  const double err = rel_err_fp64(out, s, S);
  INFO("rel err " << err);
  CHECK(err <= 3e-2);
  CHECK(err > 0);
}

TEST_CASE("KvCache: storages round-trip, bytes, ring", "[decode][cache]") {
  const Seq s = make_seq(1, 2, 2, 10, 8, 61);
  for (KvStorage st : {KvStorage::F32, KvStorage::BF16, KvStorage::Int8}) {
    KvCache c(1, 2, 10, 8, 8, st);
    c.append(s.k.view(), s.v.view());
    CHECK(c.size() == 10);
    CHECK(c.bytes() == 2 * 10 * (c.key_row_bytes() + c.value_row_bytes()));
    float row[8];
    c.key(0, 1, 4, row);
    for (int cc = 0; cc < 8; ++cc) {
      const float x = s.k.view().at(0, 1, 4, cc);
      const double tol = st == KvStorage::F32 ? 0 : st == KvStorage::BF16 ? std::fabs(x) / 256 : 4.0 / 127;
      CHECK(std::fabs(row[cc] - x) <= tol + 1e-7);
    }
  }
  CHECK(kv_storage_elem_bytes(parse_kv_storage("int8")) == 1);
  CHECK_THROWS_WITH(parse_kv_storage("fp8"), Catch::Contains("expected f32, bf16 or int8"));
  KvCache r = KvCache::ring(1, 2, 4, 8, 8, KvStorage::F32);
  r.append(s.k.view(), s.v.view());  // 10 positions into 4 slots: 6..9 remain
  CHECK(r.size() == 10);
  CHECK(r.oldest() == 6);
  float row[8];
  r.key(0, 0, 7, row);
  CHECK(row[3] == s.k.view().at(0, 0, 7, 3));
  CHECK_THROWS_WITH(r.key(0, 0, 5, row), Catch::Contains("not held"));
}

TEST_CASE("KvCache: the raw accessors check b and g like key() and value()", "[decode][cache][errors]") {
  for (KvStorage st : {KvStorage::F32, KvStorage::Int8}) {
    INFO(kv_storage_name(st));
    for (bool ring : {false, true}) {
      INFO("ring=" << ring);
      // batch 2, kv_heads 3, 5 slots, d 4, d_v 6
      KvCache c = ring ? KvCache::ring(2, 3, 5, 4, 6, st) : KvCache(2, 3, 5, 4, 6, st);
      const int64_t eb = kv_storage_elem_bytes(st);
      // The last valid (b, g) = (1, 2) is block 1 * 3 + 2 = 5 of 5 slots each.
      const auto* k0 = static_cast<const unsigned char*>(c.keys(0, 0));
      const auto* v0 = static_cast<const unsigned char*>(c.values(0, 0));
      CHECK(static_cast<const unsigned char*>(c.keys(1, 2)) == k0 + 5 * 5 * 4 * eb);
      CHECK(static_cast<const unsigned char*>(c.values(1, 2)) == v0 + 5 * 5 * 6 * eb);
      if (st == KvStorage::Int8) {
        CHECK(c.key_scales(1, 2) == c.key_scales(0, 0) + 5 * 5);
        CHECK(c.value_scales(1, 2) == c.value_scales(0, 0) + 5 * 5);
      } else {
        CHECK(c.key_scales(1, 2) == nullptr);
        CHECK(c.value_scales(1, 2) == nullptr);
      }
      for (const auto& [b, g] : {std::pair<int64_t, int64_t>{2, 0}, {-1, 0}}) {
        INFO("b=" << b << " g=" << g);
        CHECK_THROWS_WITH(c.keys(b, g), Catch::Contains("batch index " + std::to_string(b) + "; expected 0..1"));
        CHECK_THROWS_WITH(c.values(b, g), Catch::Contains("batch index " + std::to_string(b) + "; expected 0..1"));
        CHECK_THROWS_WITH(c.key_scales(b, g), Catch::Contains("batch index " + std::to_string(b) + "; expected 0..1"));
        CHECK_THROWS_WITH(c.value_scales(b, g), Catch::Contains("batch index " + std::to_string(b) + "; expected 0..1"));
      }
      for (const auto& [b, g] : {std::pair<int64_t, int64_t>{0, 3}, {1, -1}}) {
        INFO("b=" << b << " g=" << g);
        CHECK_THROWS_WITH(c.keys(b, g), Catch::Contains("kv head " + std::to_string(g) + "; expected 0..2"));
        CHECK_THROWS_WITH(c.values(b, g), Catch::Contains("kv head " + std::to_string(g) + "; expected 0..2"));
        CHECK_THROWS_WITH(c.key_scales(b, g), Catch::Contains("kv head " + std::to_string(g) + "; expected 0..2"));
        CHECK_THROWS_WITH(c.value_scales(b, g), Catch::Contains("kv head " + std::to_string(g) + "; expected 0..2"));
      }
      CHECK_THROWS_AS(c.keys(2, 3), Error);
    }
  }
}

TEST_CASE("decode: bad input throws attnkit::Error and leaves the cache intact", "[decode][errors]") {
  const int64_t N = 50;
  const Seq s = make_seq(2, 8, 2, N, 16, 71);
  const Tensor ref = forward("exact", s);
  DecodeConfig cfg = config_for(s);
  cfg.heads = 6;
  cfg.kv_heads = 4;
  CHECK_THROWS_WITH(Decoder("exact", cfg), Catch::Contains("heads=6 is not a multiple of kv_heads=4"));
  CHECK_THROWS_WITH(Decoder("nope", config_for(s)), Catch::Contains("expected exact, local, pages, performer or linear"));
  CHECK_THROWS_WITH(Decoder("local:widow=3", config_for(s)), Catch::Contains("widow"));
  CHECK_THROWS_WITH(Decoder("pages:page=0", config_for(s)), Catch::Contains("page"));
  cfg = config_for(s);
  cfg.key_lengths = {1};
  CHECK_THROWS_WITH(Decoder("exact", cfg), Catch::Contains("key_lengths has 1 entries; expected batch=2"));
  // exact and pages never hold more than capacity positions: a longer key length is refused; the
  // capacity itself is fine. local ignores capacity, so it takes any length >= 0.
  cfg = config_for(s);
  cfg.key_lengths = {static_cast<int32_t>(cfg.capacity), static_cast<int32_t>(cfg.capacity) + 1};
  for (const std::string spec : {"exact", "pages:page=8,keep=1000"})
    CHECK_THROWS_WITH(Decoder(spec, cfg),
                      Catch::Contains("key_lengths[1]=" + std::to_string(cfg.capacity + 1) + "; expected a value in [0, " +
                                      std::to_string(cfg.capacity) + "]"));
  if (ATTNKIT_HAS_LOCAL) CHECK_NOTHROW(Decoder("local:window=8", cfg));
  cfg.key_lengths = {static_cast<int32_t>(cfg.capacity), 0};
  CHECK_NOTHROW(Decoder("exact", cfg));

  for (const std::string spec : {"exact", "pages:page=8,keep=1000", "local:window=8", "performer:features=32", "linear"}) {
    INFO(spec);
    if (!ATTNKIT_HAS_KERNELIZED && (spec == "linear" || spec.rfind("performer", 0) == 0)) {
      CHECK_THROWS_WITH(Decoder(spec, config_for(s)), Catch::Contains("-Dkernelized=enabled"));
      continue;
    }
    cfg = config_for(s);
    cfg.capacity = N;
    Decoder dec(spec, cfg);
    dec.append(slice(s.k.cview(), 0, N - 2), slice(s.v.cview(), 0, N - 2));
    Tensor q5 = generate(InputFamily::Gaussian, 2, 5, 1, 16, 1).q;  // 5 heads: not the config's 8
    Tensor o(2, 8, 1, 16), o5(2, 5, 1, 16);
    CHECK_THROWS_WITH(dec.attend(q5.view(), o5.view()), Catch::Contains("q has 5 heads; expected 8"));
    Tensor kbad(2, 2, 1, 15), vgood(2, 2, 1, 16), kgood(2, 2, 1, 16), vshort(2, 2, 2, 16);
    CHECK_THROWS_WITH(dec.append(kbad.view(), vgood.view()), Catch::Contains("k has shape [2,2,1,15]"));
    CHECK_THROWS_WITH(dec.append(kgood.view(), vshort.view()), Catch::Contains("expected"));
    Tensor qwrong(2, 8, 1, 16), owrong(2, 8, 1, 15);
    CHECK_THROWS_WITH(dec.attend(qwrong.view(), owrong.view()), Catch::Contains("out has shape"));
    if (spec == "exact" || spec.rfind("pages", 0) == 0) {
      Tensor k3(2, 2, 3, 16), v3(2, 2, 3, 16);  // 48 + 3 > capacity 50
      CHECK_THROWS_WITH(dec.append(k3.view(), v3.view()), Catch::Contains("exceed the capacity 50"));
    }
    CHECK(dec.size() == N - 2);
    // Still decodes the last two positions exactly as before the failed calls.
    if (spec == "exact" || spec.rfind("pages", 0) == 0) {
      Tensor out(2, 8, 2, 16);
      for (int64_t a = N - 2; a < N; ++a) {
        dec.append(slice(s.k.cview(), a, a + 1), slice(s.v.cview(), a, a + 1));
        dec.attend(slice(s.q.cview(), a, a + 1), slice(out.view(), a - N + 2, a - N + 3));
      }
      CHECK(max_diff_last(out, ref) <= 1e-6);
      Tensor k1(2, 2, 1, 16), v1(2, 2, 1, 16);
      CHECK_THROWS_WITH(dec.append(k1.view(), v1.view()), Catch::Contains("exceed the capacity"));
    }
    Tensor q9(2, 8, 9, 16), o9(2, 8, 9, 16);
    if (spec != "exact" && spec.rfind("pages", 0) != 0)
      CHECK_THROWS_AS(dec.attend(q9.view(), o9.view()), Error);  // t > max_step / unabsorbed
    Tensor qa(2, 8, 1, 16);
    CHECK_THROWS_WITH(dec.attend(qa.view(), MutView{qa.data(), {2, 8, 1, 16}, {128, 16, 16, 1}}),
                      Catch::Contains("overlaps q"));
  }
}

TEST_CASE("non-finite cache values: int8 append refuses them, f32 and bf16 propagate them", "[decode][errors][storage]") {
  const int64_t N = 40;
  const Seq s = make_seq(1, 4, 2, N, 16, 91);
  for (const KvStorage st : {KvStorage::F32, KvStorage::BF16, KvStorage::Int8}) {
    INFO(kv_storage_name(st));
    for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
      INFO(bad);
      Decoder dec("exact", config_for(s, st));
      dec.append(slice(s.k.cview(), 0, N - 1), slice(s.v.cview(), 0, N - 1));
      Tensor k1(1, 2, 1, 16), v1(1, 2, 1, 16);
      for (int64_t g = 0; g < 2; ++g)
        for (int64_t c = 0; c < 16; ++c) {
          k1.view().row(0, g, 0)[c] = s.k.cview().row(0, g, N - 1)[c];
          v1.view().row(0, g, 0)[c] = s.v.cview().row(0, g, N - 1)[c];
        }
      v1.view().row(0, 1, 0)[5] = bad;  // kv head 1: query heads 2 and 3
      Tensor out(1, 4, 1, 16);
      if (st == KvStorage::Int8) {
        CHECK_THROWS_WITH(dec.append(k1.view(), v1.view()), Catch::Contains("v[0,1,0,5] is") &&
                                                                Catch::Contains("int8 storage holds finite values only"));
        CHECK(dec.size() == N - 1);
        k1.view().row(0, 0, 0)[3] = bad;
        v1.view().row(0, 1, 0)[5] = 1.0f;
        CHECK_THROWS_WITH(dec.append(k1.view(), v1.view()), Catch::Contains("k[0,0,0,3] is"));
        CHECK(dec.size() == N - 1);
        continue;
      }
      dec.append(k1.view(), v1.view());
      dec.attend(slice(s.q.cview(), N - 1, N), out.view());
      for (int64_t h = 0; h < 4; ++h) {
        INFO("head " << h);
        CHECK(std::isfinite(out.view().row(0, h, 0)[5]) == (h < 2));  // NaN -> NaN, inf -> inf
        CHECK(std::isfinite(out.view().row(0, h, 0)[4]));
      }
    }
  }
}

TEST_CASE("read bandwidth probe: positive for a small buffer, errors for bad arguments", "[decode][probe]") {
  ReadProbe probe(int64_t{1} << 20);
  CHECK(probe.bytes() == int64_t{1} << 20);
  CHECK(probe.best() == 0.0);
  const double a = probe.run(), b = probe.run();
  CHECK(a > 0);
  CHECK(probe.best() == std::max(a, b));
  CHECK(read_bandwidth_gbps(int64_t{1} << 20, 2) > 0);
  CHECK_THROWS_WITH(ReadProbe(-1), Catch::Contains("bytes=-1; expected >= 0"));
  CHECK_THROWS_WITH(read_bandwidth_gbps(1 << 20, 0), Catch::Contains("repeat=0; expected >= 1"));
}
