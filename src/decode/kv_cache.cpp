// KvCache: storage, quantisation and the checked append.
#include "attnkit/kv_cache.hpp"

#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "attnkit/error.hpp"
#include "memory.hpp"

namespace attnkit {

KvStorage parse_kv_storage(std::string_view name) {
  if (name == "f32") return KvStorage::F32;
  if (name == "bf16") return KvStorage::BF16;
  if (name == "int8") return KvStorage::Int8;
  detail::fail("storage '", name, "' is unknown; expected f32, bf16 or int8");
}

std::string kv_storage_name(KvStorage s) {
  switch (s) {
    case KvStorage::F32: return "f32";
    case KvStorage::BF16: return "bf16";
    case KvStorage::Int8: return "int8";
  }
  return "?";
}

int64_t kv_storage_elem_bytes(KvStorage s) { return s == KvStorage::F32 ? 4 : s == KvStorage::BF16 ? 2 : 1; }

uint16_t to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<uint16_t>(u >> 16);
}

float from_bf16(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

namespace {

using decode::Bytes;

Bytes alloc_bytes(int64_t n) { return decode::alloc_large(n); }

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / 4 / a)
    detail::fail("KvCache: ", what, " (", a, " x ", b, ") overflows; expected a smaller cache");
  return a * b;
}

// One row x (n floats) into storage at dst (+ its scale for int8).
void store_row(KvStorage s, const float* x, int64_t n, void* dst, float* scale) {
  switch (s) {
    case KvStorage::F32: std::memcpy(dst, x, static_cast<size_t>(n) * 4); break;
    case KvStorage::BF16: {
      auto* o = static_cast<uint16_t*>(dst);
      for (int64_t c = 0; c < n; ++c) o[c] = to_bf16(x[c]);
      break;
    }
    case KvStorage::Int8: {
      float amax = 0;
      for (int64_t c = 0; c < n; ++c) amax = std::fmax(amax, std::fabs(x[c]));
      const float sc = amax / 127.0f;
      const float inv = sc > 0 ? 1.0f / sc : 0.0f;
      auto* o = static_cast<int8_t*>(dst);
      for (int64_t c = 0; c < n; ++c) {
        float r = std::nearbyint(x[c] * inv);
        r = r > 127.f ? 127.f : (r < -127.f ? -127.f : r);
        o[c] = static_cast<int8_t>(r);
      }
      *scale = sc;
      break;
    }
  }
}

void load_row(KvStorage s, const void* src, float scale, int64_t n, float* out) {
  switch (s) {
    case KvStorage::F32: std::memcpy(out, src, static_cast<size_t>(n) * 4); break;
    case KvStorage::BF16:
      for (int64_t c = 0; c < n; ++c) out[c] = from_bf16(static_cast<const uint16_t*>(src)[c]);
      break;
    case KvStorage::Int8:
      for (int64_t c = 0; c < n; ++c) out[c] = scale * static_cast<float>(static_cast<const int8_t*>(src)[c]);
      break;
  }
}

void check_view(const char* name, ConstView x, int64_t b, int64_t g, int64_t dim, const char* dim_name) {
  if (!x.data) detail::fail("append: ", name, " is null; expected data");
  if (x.shape[0] != b || x.shape[1] != g || x.shape[3] != dim || x.shape[2] < 1)
    detail::fail("append: ", name, " has shape [", x.shape[0], ",", x.shape[1], ",", x.shape[2], ",", x.shape[3],
                 "]; expected [", b, ",", g, ",t>=1,", dim, "] (batch, kv_heads, t, ", dim_name, ")");
  if (x.stride[3] != 1) detail::fail("append: ", name, " last-axis stride is ", x.stride[3], "; expected 1");
  for (int a = 0; a < 3; ++a)
    if (x.stride[a] < 0) detail::fail("append: ", name, " stride[", a, "] is ", x.stride[a], "; expected >= 0");
}

// int8 rows are a scale and integers: a NaN or an infinity has no representation (before this
// check its conversion was undefined behaviour and stored garbage), so append refuses it.
void check_finite(const char* name, ConstView x, int64_t first, int64_t t) {
  for (int64_t b = 0; b < x.shape[0]; ++b)
    for (int64_t g = 0; g < x.shape[1]; ++g)
      for (int64_t j = first; j < t; ++j) {
        const float* r = x.row(b, g, j);
        for (int64_t c = 0; c < x.shape[3]; ++c)
          if (!std::isfinite(r[c]))
            detail::fail("append: ", name, "[", b, ",", g, ",", j, ",", c, "] is ", r[c],
                         "; int8 storage holds finite values only");
      }
}

}  // namespace

struct KvCache::Buffers {
  Bytes k, v;
  std::vector<float> ks, vs;  // int8 scales, [B][G][slots]
};

KvCache::KvCache(int64_t batch, int64_t kv_heads, int64_t capacity, int64_t d, int64_t d_v, KvStorage storage)
    : KvCache(batch, kv_heads, capacity, d, d_v, storage, false) {}

KvCache KvCache::ring(int64_t batch, int64_t kv_heads, int64_t slots, int64_t d, int64_t d_v, KvStorage storage) {
  return KvCache(batch, kv_heads, slots, d, d_v, storage, true);
}

KvCache::KvCache(int64_t batch, int64_t kv_heads, int64_t slots, int64_t d, int64_t d_v, KvStorage storage,
                 bool ring)
    : batch_(batch), kv_heads_(kv_heads), slots_(slots), d_(d), d_v_(d_v), storage_(storage), ring_(ring) {
  const char* names[] = {"batch", "kv_heads", ring ? "slots" : "capacity", "d", "d_v"};
  const int64_t vals[] = {batch, kv_heads, slots, d, d_v};
  for (int i = 0; i < 5; ++i)
    if (vals[i] < 1) detail::fail("KvCache: ", names[i], "=", vals[i], "; expected >= 1");
  const int64_t rows = checked_mul(checked_mul(batch, kv_heads, "batch x kv_heads"), slots, "rows");
  const int64_t eb = kv_storage_elem_bytes(storage);
  buf_ = std::make_unique<Buffers>();
  buf_->k = alloc_bytes(checked_mul(rows, d * eb, "key bytes"));
  buf_->v = alloc_bytes(checked_mul(rows, d_v * eb, "value bytes"));
  if (storage == KvStorage::Int8) {
    buf_->ks.assign(static_cast<size_t>(rows), 0.0f);
    buf_->vs.assign(static_cast<size_t>(rows), 0.0f);
  }
}

KvCache::KvCache(KvCache&&) noexcept = default;
KvCache& KvCache::operator=(KvCache&&) noexcept = default;
KvCache::~KvCache() = default;

int64_t KvCache::key_row_bytes() const {
  return d_ * kv_storage_elem_bytes(storage_) + (storage_ == KvStorage::Int8 ? 4 : 0);
}
int64_t KvCache::value_row_bytes() const {
  return d_v_ * kv_storage_elem_bytes(storage_) + (storage_ == KvStorage::Int8 ? 4 : 0);
}
int64_t KvCache::bytes() const { return batch_ * kv_heads_ * slots_ * (key_row_bytes() + value_row_bytes()); }

const void* KvCache::keys(int64_t b, int64_t g) const {
  check_head(b, g);
  return buf_->k.get() + (b * kv_heads_ + g) * slots_ * d_ * kv_storage_elem_bytes(storage_);
}
const void* KvCache::values(int64_t b, int64_t g) const {
  check_head(b, g);
  return buf_->v.get() + (b * kv_heads_ + g) * slots_ * d_v_ * kv_storage_elem_bytes(storage_);
}
const float* KvCache::key_scales(int64_t b, int64_t g) const {
  check_head(b, g);
  return storage_ == KvStorage::Int8 ? buf_->ks.data() + (b * kv_heads_ + g) * slots_ : nullptr;
}
const float* KvCache::value_scales(int64_t b, int64_t g) const {
  check_head(b, g);
  return storage_ == KvStorage::Int8 ? buf_->vs.data() + (b * kv_heads_ + g) * slots_ : nullptr;
}

// The raw accessors check (b, g) too: an out-of-range pair would point outside the buffers.
void KvCache::check_head(int64_t b, int64_t g) const {
  if (b < 0 || b >= batch_) detail::fail("KvCache: batch index ", b, "; expected 0..", batch_ - 1);
  if (g < 0 || g >= kv_heads_) detail::fail("KvCache: kv head ", g, "; expected 0..", kv_heads_ - 1);
}

void KvCache::check_row(int64_t b, int64_t g, int64_t p) const {
  check_head(b, g);
  if (p < oldest() || p >= size_)
    detail::fail("KvCache: position ", p, " is not held; expected ", oldest(), "..", size_ - 1);
}

void KvCache::key(int64_t b, int64_t g, int64_t p, float* out) const {
  check_row(b, g, p);
  const int64_t s = slot(p), eb = kv_storage_elem_bytes(storage_);
  const float* sc = key_scales(b, g);
  load_row(storage_, static_cast<const unsigned char*>(keys(b, g)) + s * d_ * eb, sc ? sc[s] : 1.0f, d_, out);
}

void KvCache::value(int64_t b, int64_t g, int64_t p, float* out) const {
  check_row(b, g, p);
  const int64_t s = slot(p), eb = kv_storage_elem_bytes(storage_);
  const float* sc = value_scales(b, g);
  load_row(storage_, static_cast<const unsigned char*>(values(b, g)) + s * d_v_ * eb, sc ? sc[s] : 1.0f, d_v_,
           out);
}

void KvCache::clear() { size_ = 0; }

void KvCache::append(ConstView k, ConstView v) {
  check_view("k", k, batch_, kv_heads_, d_, "d");
  check_view("v", v, batch_, kv_heads_, d_v_, "d_v");
  const int64_t t = k.shape[2];
  if (v.shape[2] != t) detail::fail("append: v has t=", v.shape[2], " new positions; expected k's t=", t);
  if (!ring_ && size_ + t > slots_)
    detail::fail("append: ", t, " new positions onto ", size_, " exceed the capacity ", slots_,
                 "; expected at most ", slots_ - size_);
  // A ring keeps only the last `slots` of the new positions.
  const int64_t first = (ring_ && t > slots_) ? t - slots_ : 0;
  if (storage_ == KvStorage::Int8) {
    check_finite("k", k, first, t);
    check_finite("v", v, first, t);
  }
  const int64_t eb = kv_storage_elem_bytes(storage_);
  const int64_t bg = batch_ * kv_heads_;
  unsigned char* kb = buf_->k.get();
  unsigned char* vb = buf_->v.get();
  float* ks = buf_->ks.empty() ? nullptr : buf_->ks.data();
  float* vs = buf_->vs.empty() ? nullptr : buf_->vs.data();
#pragma omp parallel for schedule(static) if (bg * (t - first) * (d_ + d_v_) > (1 << 16))
  for (int64_t i = 0; i < bg; ++i) {
    const int64_t b = i / kv_heads_, g = i % kv_heads_;
    for (int64_t j = first; j < t; ++j) {
      const int64_t s = slot(size_ + j);
      const int64_t row = i * slots_ + s;
      store_row(storage_, k.row(b, g, j), d_, kb + row * d_ * eb, ks ? ks + row : nullptr);
      store_row(storage_, v.row(b, g, j), d_v_, vb + row * d_v_ * eb, vs ? vs + row : nullptr);
    }
  }
  size_ += t;
}

}  // namespace attnkit
