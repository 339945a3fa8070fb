// The path-independent part of the reduced-precision kernels: packing K and V into the layouts of
// lowp.hpp, and the choice of the kernel set (amx, avx512bf16, or the portable set of the active
// fp32 SIMD path).
#include "lowp.hpp"

#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "attnkit/error.hpp"
#include "attnkit/simd.hpp"
#include "lowp_paths.hpp"
#include "paths.hpp"

#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace attnkit::simd {

const char* to_string(Precision p) {
  switch (p) {
    case Precision::fp32: return "fp32";
    case Precision::bf16: return "bf16";
    case Precision::int8: return "int8";
  }
  return "?";
}

namespace {

inline int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

// n floats to bf16, the rounding of to_bf16() written branch-free so that it vectorises.
void round_row(const float* x, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, 4);
    const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    out[i] = static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? ((u >> 16) | 0x40u) : r);
  }
}

}  // namespace

void LowpKV::pack(Precision p, const float* k, int64_t k_stride, const float* v, int64_t v_stride, int64_t n_k,
                  int64_t d, int64_t d_v) {
  if (p == Precision::fp32) detail::fail("LowpKV::pack: precision=fp32; expected bf16 or int8");
  if (n_k <= 0 || d <= 0 || d_v <= 0)
    detail::fail("LowpKV::pack: n_k=", n_k, ", d=", d, ", d_v=", d_v, "; expected all > 0");
  prec_ = p;
  n_k_ = n_k;
  d_ = d;
  d_v_ = d_v;
  tiles_ = (n_k + kKeyTile - 1) / kKeyTile;
  dvp_ = round_up(d_v, 16);
  const int64_t nkp = tiles_ * kKeyTile;

  // Values: [key pair][dvp][2], the VNNI order that vdpbf16ps and the AMX B tile read: round the
  // two rows of a pair, then interleave them as 32-bit words.
  vb_.resize(static_cast<size_t>(nkp * dvp_));
  std::vector<uint16_t> r0(static_cast<size_t>(dvp_), 0), r1(static_cast<size_t>(dvp_), 0);
  for (int64_t j = 0; j < nkp; j += 2) {
    std::fill(r0.begin(), r0.end(), 0);
    std::fill(r1.begin(), r1.end(), 0);
    if (j < n_k) round_row(v + j * v_stride, r0.data(), d_v);
    if (j + 1 < n_k) round_row(v + (j + 1) * v_stride, r1.data(), d_v);
    uint32_t* dst = reinterpret_cast<uint32_t*>(vb_.data() + j * dvp_);
    for (int64_t c = 0; c < dvp_; ++c) dst[c] = uint32_t(r0[size_t(c)]) | uint32_t(r1[size_t(c)]) << 16;
  }

  if (p == Precision::bf16) {
    dp_ = round_up(d, 32);
    kb_.resize(static_cast<size_t>(tiles_ * dp_ * kKeyTile));
    k8_.clear();
    kscale_.clear();
    ksum_.clear();
    // Per key tile: round its rows into [32][dp], then transpose channel pairs as 32-bit words.
    std::vector<uint16_t> rows(static_cast<size_t>(kKeyTile * dp_));
    for (int64_t t = 0; t < tiles_; ++t) {
      std::fill(rows.begin(), rows.end(), 0);
      for (int64_t jj = 0; jj < kKeyTile && t * kKeyTile + jj < n_k; ++jj)
        round_row(k + (t * kKeyTile + jj) * k_stride, rows.data() + jj * dp_, d);
      const uint32_t* src = reinterpret_cast<const uint32_t*>(rows.data());
      uint32_t* dst = reinterpret_cast<uint32_t*>(kb_.data() + t * dp_ * kKeyTile);
      for (int64_t cp = 0; cp < dp_ / 2; ++cp)
        for (int64_t jj = 0; jj < kKeyTile; ++jj) dst[cp * kKeyTile + jj] = src[jj * (dp_ / 2) + cp];
    }
    return;
  }

  // int8: subtract the mean key (in double: n_k may be large), then one scale per key tile.
  dp_ = round_up(d, 64);
  kb_.clear();
  std::vector<double> mean(static_cast<size_t>(d), 0.0);
  for (int64_t j = 0; j < n_k; ++j)
    for (int64_t c = 0; c < d; ++c) mean[static_cast<size_t>(c)] += k[j * k_stride + c];
  for (double& m : mean) m /= static_cast<double>(n_k);
  k8_.assign(static_cast<size_t>(tiles_ * dp_ * kKeyTile), 0);
  kscale_.assign(static_cast<size_t>(tiles_), 0.0f);
  ksum_.assign(static_cast<size_t>(nkp), 0);
  std::vector<float> centred(static_cast<size_t>(kKeyTile * d));
  for (int64_t t = 0; t < tiles_; ++t) {
    const int64_t j0 = t * kKeyTile, nj = std::min(kKeyTile, n_k - j0);
    float amax = 0.0f;
    bool finite = true;
    for (int64_t jj = 0; jj < nj; ++jj)
      for (int64_t c = 0; c < d; ++c) {
        const float x = static_cast<float>(k[(j0 + jj) * k_stride + c] - mean[static_cast<size_t>(c)]);
        centred[static_cast<size_t>(jj * d + c)] = x;
        if (!std::isfinite(x)) finite = false;
        amax = std::max(amax, std::fabs(x));
      }
    // A non-finite key makes the tile's scale NaN, so its scores (and the rows that see them)
    // become NaN: as fp32 attention does, never a silent finite result.
    const float scale = finite ? amax / 127.0f : std::numeric_limits<float>::quiet_NaN();
    kscale_[static_cast<size_t>(t)] = scale;
    const float inv = (finite && amax > 0.0f) ? 127.0f / amax : 0.0f;
    int8_t* base = k8_.data() + t * dp_ * kKeyTile;
    for (int64_t jj = 0; jj < nj; ++jj) {
      int32_t sum = 0;
      for (int64_t c = 0; c < d; ++c) {
        const int8_t qv = quantize_int8(centred[static_cast<size_t>(jj * d + c)], inv);
        base[((c / 4) * kKeyTile + jj) * 4 + (c & 3)] = qv;
        sum += qv;
      }
      ksum_[static_cast<size_t>(j0 + jj)] = sum;
    }
  }
}

int64_t LowpKV::bytes() const {
  return static_cast<int64_t>(kb_.size() * sizeof(uint16_t) + k8_.size() + kscale_.size() * sizeof(float) +
                              ksum_.size() * sizeof(int32_t) + vb_.size() * sizeof(uint16_t));
}

namespace {

// Linux keeps the AMX tile data state off until a process asks for it (arch_prctl); without it
// the first tile instruction raises SIGILL. Asked once; a refusal means no AMX set.
bool amx_permitted() {
#if defined(__linux__) && defined(__x86_64__)
  static const bool ok = [] {
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return ok;
#else
  return false;
#endif
}

struct LowpSet {
  const char* name;
  LowpKernel kernel;
};

// Fast sets this build has that this CPU runs, fastest first.
std::vector<LowpSet> fast_sets() {
  std::vector<LowpSet> out;
#if ATTNKIT_SIMD_HAS_AMX || ATTNKIT_SIMD_HAS_AVX512BF16
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  const bool bf16 = avx512 && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vnni");
#endif
#if ATTNKIT_SIMD_HAS_AMX
  // The AMX kernels also use AVX512-BF16 for the softmax's bf16 rounding. GCC 12's
  // __builtin_cpu_supports has no AMX names: CPUID leaf 7 EDX bits 22 (bf16), 24 (tile), 25 (int8).
  {
    unsigned a = 0, b = 0, c = 0, d = 0;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
    const bool amx = (d >> 22 & 1) && (d >> 24 & 1) && (d >> 25 & 1);
    if (bf16 && amx && amx_permitted()) out.push_back({"amx", &amx::attend_lowp_kernel});
  }
#endif
#if ATTNKIT_SIMD_HAS_AVX512BF16
  if (bf16) out.push_back({"avx512bf16", &avx512bf16::attend_lowp_kernel});
#endif
  return out;
}

struct LowpChoice {
  LowpSet set{nullptr, nullptr};
  std::string error;
};

LowpChoice choose_lowp() {
  LowpChoice ch;
  const std::vector<LowpSet> fast = fast_sets();
  const char* env = std::getenv("ATTNKIT_SIMD");
  if (env && *env) {
    for (const LowpSet& s : fast)
      if (env == std::string(s.name)) {
        ch.set = s;
        return ch;
      }
    if (is_lowp_set_name(env)) {
      ch.error = "ATTNKIT_SIMD=" + std::string(env) + " is not available in this build on this CPU" +
                 (std::string(env) == "amx" ? " (or the kernel refused the AMX tile state)" : "");
      return ch;
    }
  } else if (!fast.empty()) {
    ch.set = fast.front();
    return ch;
  }
  // The portable set of the active fp32 path (throws there for a bad ATTNKIT_SIMD).
  ch.set = {"portable", active_path().attend_lowp};
  return ch;
}

const LowpSet& active_lowp() {
  static const LowpChoice choice = [] {
    try {
      return choose_lowp();
    } catch (const Error& e) {
      LowpChoice c;
      c.error = e.what();
      return c;
    }
  }();
  if (!choice.set.kernel) throw Error(choice.error);
  return choice.set;
}

void check_sizes(const AttendArgs& a, const LowpKV& kv) {
  if (kv.n_k() <= 0) detail::fail("attend_lowp: kv is not packed; expected LowpKV::pack() first");
  if (a.d != kv.d() || a.d_v != kv.d_v())
    detail::fail("attend_lowp: a.d=", a.d, ", a.d_v=", a.d_v, "; expected kv's d=", kv.d(), ", d_v=", kv.d_v());
}

}  // namespace

bool is_lowp_set_name(const std::string& s) { return s == "amx" || s == "avx512bf16"; }

void attend_lowp(const AttendArgs& a, const LowpKV& kv, std::span<const KeySpan> spans, const TileMask* mask,
                 Workspace& ws) {
  const LowpSet& s = active_lowp();
  check_sizes(a, kv);
  if (a.rows <= 0) return;
  s.kernel(a, kv, spans, mask, ws);
}

const char* lowp_path_name() { return active_lowp().name; }

std::vector<std::string> lowp_paths_runnable() {
  std::vector<std::string> out;
  for (const LowpSet& s : fast_sets()) out.emplace_back(s.name);
  out.emplace_back("portable");
  return out;
}

void attend_lowp_on(const std::string& name, const AttendArgs& a, const LowpKV& kv, std::span<const KeySpan> spans,
                    const TileMask* mask, Workspace& ws) {
  check_sizes(a, kv);
  LowpKernel k = nullptr;
  if (name == "portable") k = active_path().attend_lowp;
  for (const LowpSet& s : fast_sets())
    if (name == s.name) k = s.kernel;
  if (!k) detail::fail("attend_lowp_on: name=", name, "; expected one of this CPU's lowp_paths_runnable()");
  if (a.rows <= 0) return;
  k(a, kv, spans, mask, ws);
}

}  // namespace attnkit::simd

namespace attnkit {

std::string precision_path() { return simd::lowp_path_name(); }

std::vector<std::string> precision_paths() { return simd::lowp_paths_runnable(); }

}  // namespace attnkit
