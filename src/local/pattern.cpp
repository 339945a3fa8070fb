// LocalPattern: the one definition of the allowed set N(i).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "../core/numerics.hpp"
#include "attnkit/error.hpp"
#include "attnkit/local.hpp"
#include "params.hpp"
#include "ranges.hpp"

namespace attnkit {

namespace {

using numerics::floor_div;

// splitmix64: a tiny, well-mixed, platform-independent generator for the random blocks.
uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Uniform integer in [0, n) (multiply-shift: bias < n / 2^64, negligible).
int64_t below(uint64_t& s, int64_t n) {
  return static_cast<int64_t>((static_cast<unsigned __int128>(splitmix(s)) * static_cast<uint64_t>(n)) >> 64);
}

}  // namespace

namespace local {

// The table (params.hpp).
std::vector<ParamDef> local_params() {
  return {{"window", ParamType::Int, "256", 0, 1e9, "keys per query in the sliding window (0 = none; centred, causal: ending at the query)"},
          {"dilation", ParamType::Int, "1", 1, 1e6, "window keys pos + dilation*t (needs window >= 1, blocks = 0)"},
          {"global", ParamType::Int, "0", 0, 1e9, "first G positions: seen by every query, and see every key"},
          {"blocks", ParamType::Int, "0", 0, 1e6, "BigBird block size (0 = none): neighbour + random blocks (window=0 for pure BigBird)"},
          {"random", ParamType::Int, "0", 0, 1e6, "random key blocks per query block (needs blocks >= 1)"},
          {"seed", ParamType::Int, "0", 0, 1e9, "seed of the random blocks"},
          {"block_q", ParamType::Int, "0", 0, 4096, "query rows per tile (0 = auto)"},
          {"block_k", ParamType::Int, "0", 0, 8192, "keys per score tile (0 = auto)"},
          precision_param()};
}

Params local_values(const LocalOptions& o) {
  auto kv = [](const char* k, int64_t v) { return std::pair<std::string, std::string>(k, std::to_string(v)); };
  std::vector<std::pair<std::string, std::string>> v{
      kv("window", o.window), kv("dilation", o.dilation), kv("global", o.global), kv("blocks", o.blocks),
      kv("random", o.random), kv("seed", o.seed),     kv("block_q", o.block_q), kv("block_k", o.block_k)};
  // fp32 leaves the precision out of the canonical spec (attnkit/precision.hpp, spec_params).
  if (o.precision != ComputePrecision::fp32) v.emplace_back("precision", precision_name(o.precision));
  return Params("local", spec_params(local_params(), o.precision), v);
}

}  // namespace local

LocalPattern::LocalPattern(const LocalOptions& o, int64_t n_q, int64_t n_k, bool causal)
    : opt_(o), n_q_(n_q), n_k_(n_k), causal_(causal) {
  if (n_q < 1 || n_k < 1) detail::fail("local: n_q=", n_q, ", n_k=", n_k, "; expected both >= 1");
  local::local_values(o);  // each option's range, from the one table (params.hpp)
  if (o.window == 0 && o.blocks == 0)
    detail::fail("local: window=0 and blocks=0; expected window >= 1 (sliding window) or blocks >= 1 (BigBird)");
  if (o.random > 0 && o.blocks == 0) detail::fail("local: random=", o.random, " with blocks=0; expected blocks >= 1");
  if (o.dilation > 1 && o.window == 0)
    detail::fail("local: dilation=", o.dilation, " with window=0; expected window >= 1 (dilation applies to the window)");
  if (o.dilation > 1 && o.blocks > 0)
    detail::fail("local: dilation=", o.dilation, " with blocks=", o.blocks, "; expected dilation=1 in block-sparse mode");
  if (causal) {
    left_ = o.window > 0 ? o.window - 1 : 0;
    right_ = 0;
  } else {
    left_ = o.window / 2;
    right_ = o.window > 0 ? o.window - 1 - left_ : 0;
  }
}

int64_t LocalPattern::query_block(int64_t i) const { return floor_div(position(i), opt_.blocks); }

void LocalPattern::random_blocks(int64_t h, int64_t qb, std::vector<int64_t>& out) const {
  out.clear();
  const int64_t B = opt_.blocks;
  if (B == 0 || opt_.random == 0) return;
  const int64_t nkb = (n_k_ + B - 1) / B;
  const int64_t lo = std::min(opt_.global / B, nkb);    // blocks wholly inside the globals are skipped
  const int64_t hi = causal_ ? std::min(nkb, qb - 1) : nkb;  // causal: only left of the neighbours
  if (hi <= lo) return;
  // Candidates [lo, hi) minus the neighbour blocks [e0, e1).
  const int64_t e0 = std::clamp(qb - 1, lo, hi), e1 = std::clamp(qb + 2, lo, hi);
  const int64_t m = (hi - lo) - (e1 - e0);
  if (m <= 0) return;
  auto block_of = [&](int64_t x) { return lo + x + (lo + x >= e0 ? e1 - e0 : 0); };
  if (m <= opt_.random) {
    for (int64_t x = 0; x < m; ++x) out.push_back(block_of(x));
    return;
  }
  uint64_t s = static_cast<uint64_t>(opt_.seed) * 0xD1B54A32D192ED03ULL;
  s ^= static_cast<uint64_t>(h + 1) * 0x8CB92BA72F3D8DD7ULL;
  s ^= static_cast<uint64_t>(qb) * 0xABC98388FB8FAC03ULL;
  splitmix(s);
  // Floyd's sampling of `random` distinct indices from [0, m): O(random²), no candidate list.
  for (int64_t j = m - opt_.random; j < m; ++j) {
    const int64_t t = below(s, j + 1);
    const bool seen = std::find(out.begin(), out.end(), t) != out.end();
    out.push_back(seen ? j : t);
  }
  for (int64_t& x : out) x = block_of(x);
  std::sort(out.begin(), out.end());
}

void LocalPattern::row(int64_t h, int64_t i, int64_t key_end, std::vector<KeyRun>& out) const {
  out.clear();
  const int64_t ke = std::min(key_end, n_k_);
  if (ke <= 0) return;
  if (global_row(i)) {
    out.push_back({0, ke, 1});
    return;
  }
  const int64_t pos = position(i), G = std::min(opt_.global, ke), R = opt_.dilation;
  if (G > 0) out.push_back({0, G, 1});
  // The window, starting at or after G (the globals already hold the keys below G).
  if (opt_.window > 0) {
    const int64_t lo = pos - R * left_, end = std::min(pos + R * right_ + 1, ke);
    const int64_t floor_key = std::max<int64_t>(G, 0);
    const int64_t begin = lo >= floor_key ? lo : lo + (floor_key - lo + R - 1) / R * R;
    if (begin < end) out.push_back({begin, end, R});
  }
  if (opt_.blocks > 0) {
    const int64_t B = opt_.blocks, qb = floor_div(pos, B);
    auto add = [&](int64_t b0, int64_t b1) {  // key blocks [b0, b1)
      const int64_t a = std::max(b0 * B, G), e = std::min(b1 * B, ke);
      if (a < e) out.push_back({a, e, 1});
    };
    add(qb - 1, qb + 2);
    static thread_local std::vector<int64_t> rnd;
    random_blocks(h, qb, rnd);
    for (int64_t kb : rnd) add(kb, kb + 1);
  }
  if (R > 1) return;  // globals + one dilated run, disjoint by construction
  local::merge_ranges(out);  // step-1 runs: overlapping or touching ones become one
}

}  // namespace attnkit
