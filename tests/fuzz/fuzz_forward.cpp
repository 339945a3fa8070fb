// libFuzzer target: forward() on fuzzed small shapes, strides, masks and backends either throws
// attnkit::Error or writes every output element, without touching memory outside the views.
// Inputs are int8/16, so |v| <= 8 and every attention output (a convex combination of value
// rows, or 0) lies in [-8, 8]: the sentinel 1e30 can only survive where nothing was written.
// (An earlier sentinel, -7, is a reachable value: a row seeing one key with v = -7 outputs it.)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "attnkit/attnkit.hpp"

namespace {
constexpr float kUnwritten = 1e30f;
struct Bytes {
  const uint8_t* p;
  size_t n, i = 0;
  uint8_t next() { return i < n ? p[i++] : 0; }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in{data, size};
  const auto& list = attnkit::list_backends();
  if (list.empty()) return 0;
  const auto& info = list[in.next() % list.size()];
  const int64_t B = 1 + in.next() % 2, Hkv = 1 + in.next() % 2, G = 1 + in.next() % 2, H = Hkv * G;
  const int64_t nq = 1 + in.next() % 40, nk = 1 + in.next() % 40, d = 1 + in.next() % 9, dv = 1 + in.next() % 9;
  const int64_t pad = in.next() % 3;  // extra row stride: exercises strided views
  const uint8_t flags = in.next();
  // Storage sized from the (padded) row strides, so every view stays inside its buffer.
  std::vector<float> q(static_cast<size_t>(B * H * nq * (d + pad))), k(static_cast<size_t>(B * Hkv * nk * (d + pad))),
      v(static_cast<size_t>(B * Hkv * nk * (dv + pad))), out(static_cast<size_t>(B * H * nq * (dv + pad)), kUnwritten);
  for (auto* t : {&q, &k, &v})
    for (float& x : *t) x = static_cast<float>(static_cast<int8_t>(in.next())) / 16.0f;
  attnkit::Problem p;
  p.q = {q.data(), {B, H, nq, d}, {H * nq * (d + pad), nq * (d + pad), d + pad, 1}};
  p.k = {k.data(), {B, Hkv, nk, d}, {Hkv * nk * (d + pad), nk * (d + pad), d + pad, 1}};
  p.v = {v.data(), {B, Hkv, nk, dv}, {Hkv * nk * (dv + pad), nk * (dv + pad), dv + pad, 1}};
  p.out = {out.data(), {B, H, nq, dv}, {H * nq * (dv + pad), nq * (dv + pad), dv + pad, 1}};
  p.mask.causal = flags & 1;
  if (flags & 2)
    for (int64_t b = 0; b < B; ++b) p.mask.key_lengths.push_back(static_cast<int32_t>(in.next() % (nk + 1)));
  if (flags & 4) p.scale = static_cast<float>(in.next()) / 32.0f;  // includes 0: must be rejected
  if (flags & 8) p.k.shape[3] = d + 1;                              // mismatched dims: must be rejected
  try {
    info.make(attnkit::Params(info.name, info.params, {}))->forward(p);
  } catch (const attnkit::Error&) {
    return 0;
  }
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < nq; ++i)
        for (int64_t c = 0; c < dv; ++c)
          if (p.out.at(b, h, i, c) == kUnwritten) std::abort();  // an output element was never written
  return 0;
}
