// attnkit::Decoder: spec parsing, the shared checks, and forwarding to the backend's DecodeImpl.
#include <algorithm>
#include <cmath>

#include "attnkit/error.hpp"
#include "attnkit/simd.hpp"
#include "attnkit_config.hpp"
#include "impl.hpp"

namespace attnkit {

namespace {

void check_4d(const char* what, const char* name, const void* data, const std::array<int64_t, 4>& shape,
              const std::array<int64_t, 4>& stride, const std::array<int64_t, 4>& want, const char* layout) {
  if (!data) detail::fail(what, ": ", name, " is null; expected data");
  if (shape != want)
    detail::fail(what, ": ", name, " has shape [", shape[0], ",", shape[1], ",", shape[2], ",", shape[3],
                 "]; expected [", want[0], ",", want[1], ",", want[2], ",", want[3], "] ", layout);
  if (stride[3] != 1) detail::fail(what, ": ", name, " last-axis stride is ", stride[3], "; expected 1");
  for (int a = 0; a < 3; ++a)
    if (stride[a] < 0) detail::fail(what, ": ", name, " stride[", a, "] is ", stride[a], "; expected >= 0");
}

// [first, last] byte address of a view's elements.
std::pair<uintptr_t, uintptr_t> extent(const float* p, const std::array<int64_t, 4>& shape,
                                       const std::array<int64_t, 4>& stride) {
  int64_t off = 0;
  for (int a = 0; a < 4; ++a) off += (shape[a] - 1) * stride[a];
  const auto a = reinterpret_cast<uintptr_t>(p);
  return {a, a + static_cast<uintptr_t>(off) * 4 + 3};
}

}  // namespace

float DecodeImpl::scale() const {
  return cfg_.scale ? *cfg_.scale : 1.0f / std::sqrt(static_cast<float>(cfg_.d));
}

int64_t DecodeImpl::check_attend(ConstView q, MutView out) const {
  const int64_t t = q.shape[2];
  if (q.shape[0] == cfg_.batch && q.shape[3] == cfg_.d && q.shape[1] != cfg_.heads)
    detail::fail("attend: q has ", q.shape[1], " heads; expected ", cfg_.heads, " (", cfg_.kv_heads,
                 " kv heads x group ", cfg_.heads / cfg_.kv_heads, ")");
  if (t < 1) detail::fail("attend: q has t=", t, " new positions; expected t >= 1");
  check_4d("attend", "q", q.data, q.shape, q.stride, {cfg_.batch, cfg_.heads, t, cfg_.d}, "(batch, heads, t, d)");
  check_4d("attend", "out", out.data, out.shape, out.stride, {cfg_.batch, cfg_.heads, t, cfg_.d_v},
           "(batch, heads, t, d_v)");
  if (t > size()) detail::fail("attend: t=", t, " new positions but the cache holds ", size(), "; expected t <= ", size(),
                               " (append the new tokens' keys and values first)");
  const auto a = extent(q.data, q.shape, q.stride);
  const auto b = extent(out.data, out.shape, out.stride);
  if (a.first <= b.second && b.first <= a.second) detail::fail("attend: out overlaps q; expected separate buffers");
  return t;
}

namespace decode {

void check_config(const DecodeConfig& c) {
  const char* names[] = {"batch", "heads", "kv_heads", "d", "d_v", "capacity", "max_step"};
  const int64_t vals[] = {c.batch, c.heads, c.kv_heads, c.d, c.d_v, c.capacity, c.max_step};
  for (int i = 0; i < 7; ++i)
    if (vals[i] < 1) detail::fail("decode config: ", names[i], "=", vals[i], "; expected >= 1");
  if (c.heads % c.kv_heads != 0)
    detail::fail("decode config: heads=", c.heads, " is not a multiple of kv_heads=", c.kv_heads,
                 "; expected heads % kv_heads == 0");
  if (c.scale && !(std::isfinite(*c.scale) && *c.scale > 0))
    detail::fail("decode config: scale=", *c.scale, "; expected a finite value > 0");
  if (!c.key_lengths.empty()) {
    if (static_cast<int64_t>(c.key_lengths.size()) != c.batch)
      detail::fail("decode config: key_lengths has ", c.key_lengths.size(), " entries; expected batch=", c.batch);
    for (size_t b = 0; b < c.key_lengths.size(); ++b)
      if (c.key_lengths[b] < 0)
        detail::fail("decode config: key_lengths[", b, "]=", c.key_lengths[b], "; expected >= 0");
  }
}

int64_t check_kv(const DecodeConfig& cfg, ConstView k, ConstView v) {
  const int64_t t = k.shape[2];
  if (t < 1) detail::fail("append: k has t=", t, " new positions; expected t >= 1");
  check_4d("append", "k", k.data, k.shape, k.stride, {cfg.batch, cfg.kv_heads, t, cfg.d}, "(batch, kv_heads, t, d)");
  check_4d("append", "v", v.data, v.shape, v.stride, {cfg.batch, cfg.kv_heads, t, cfg.d_v},
           "(batch, kv_heads, t, d_v)");
  return t;
}

}  // namespace decode

const std::vector<std::string>& decode_backend_names() {
  static const std::vector<std::string> names{"exact", "local", "pages", "performer", "linear"};
  return names;
}

Decoder::Decoder(std::string_view spec, const DecodeConfig& cfg) {
  simd_path();  // a bad ATTNKIT_SIMD throws here, not at a first kernel call inside a parallel region
  decode::check_config(cfg);
  const ParsedSpec ps = parse_spec(spec);
  // exact and pages hold at most `capacity` positions, so a longer key length could never be
  // reached (local, performer and linear ignore capacity: their sequences may be longer).
  if (ps.name == "exact" || ps.name == "pages")
    for (size_t b = 0; b < cfg.key_lengths.size(); ++b)
      if (cfg.key_lengths[b] > cfg.capacity)
        detail::fail("decode config: key_lengths[", b, "]=", cfg.key_lengths[b], "; expected a value in [0, ",
                     cfg.capacity, "] (capacity: ", ps.name, " holds at most capacity positions)");
  if (ps.name == "exact") {
    impl_ = decode::make_exact(Params("exact", {}, ps.pairs), cfg);
  } else if (ps.name == "local") {
    const std::vector<ParamDef> defs{{"window", ParamType::Int, "256", 1, 1 << 30, "positions each query sees"}};
    impl_ = decode::make_local(Params("local", defs, ps.pairs), cfg);
  } else if (ps.name == "pages") {
    const std::vector<ParamDef> defs{
        {"page", ParamType::Int, "16", 1, 1 << 20, "positions per page"},
        {"keep", ParamType::Int, "1024", 1, 1e15, "keys kept: the best ceil(keep/page) pages"}};
    impl_ = decode::make_pages(Params("pages", defs, ps.pairs), cfg);
  } else if (ps.name == "performer" || ps.name == "linear") {
#if ATTNKIT_HAS_KERNELIZED
    impl_ = decode::make_kernelized(ps, cfg);
#else
    detail::fail("decode backend '", ps.name, "' needs the kernelized family; expected meson option -Dkernelized=enabled");
#endif
  } else {
    detail::fail("decode backend '", ps.name, "' is unknown; expected exact, local, pages, performer or linear");
  }
}

Decoder::~Decoder() = default;
Decoder::Decoder(Decoder&&) noexcept = default;
Decoder& Decoder::operator=(Decoder&&) noexcept = default;

void Decoder::append(ConstView k, ConstView v) { impl_->append(k, v); }
void Decoder::attend(ConstView q, MutView out) { impl_->attend(q, out); }
int64_t Decoder::size() const { return impl_->size(); }
std::string Decoder::spec() const { return impl_->spec; }
const DecodeConfig& Decoder::config() const { return impl_->config(); }
int64_t Decoder::bytes() const { return impl_->bytes(); }
int64_t Decoder::bytes_read() const { return impl_->bytes_read(); }
std::vector<int64_t> Decoder::selected_pages(int64_t b, int64_t g) const {
  if (b < 0 || b >= config().batch || g < 0 || g >= config().kv_heads)
    detail::fail("selected_pages: (b, g) = (", b, ", ", g, "); expected b < ", config().batch, ", g < ",
                 config().kv_heads);
  return impl_->selected_pages(b, g);
}

}  // namespace attnkit
