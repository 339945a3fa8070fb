// Decode backends `exact` (every cached position, split-K) and `local:window=W` (ring cache).
#include "attnkit/error.hpp"
#include "cache_impl.hpp"

namespace attnkit::decode {

namespace {

class ExactDecode final : public CacheImpl {
 public:
  explicit ExactDecode(const DecodeConfig& cfg)
      : CacheImpl(cfg, KvCache(cfg.batch, cfg.kv_heads, cfg.capacity, cfg.d, cfg.d_v, cfg.storage)) {}

  void attend(ConstView q, MutView out) override {
    check_attend(q, out);
    Queries qs;
    qs.pack(q, cfg_.kv_heads, scale(), cache_.size(), 0, cfg_.key_lengths);
    Plan plan;
    for (int64_t i = 0; i < qs.bg; ++i) plan.add_range(cache_, i, 0, qs.max_end(i), kChunk);
    run(cache_, qs, plan, out);
    bytes_read_ = plan.positions * row_bytes();
  }
};

// The ring holds window + max_step - 1 positions: the oldest of t <= max_step new tokens still
// sees its whole window after all t were appended.
class LocalDecode final : public CacheImpl {
 public:
  LocalDecode(const DecodeConfig& cfg, int64_t window)
      : CacheImpl(cfg, KvCache::ring(cfg.batch, cfg.kv_heads, window + cfg.max_step - 1, cfg.d, cfg.d_v, cfg.storage)),
        window_(window) {}

  void attend(ConstView q, MutView out) override {
    const int64_t t = check_attend(q, out);
    if (t > cfg_.max_step)
      detail::fail("attend: t=", t, " new positions; local keeps window + max_step - 1 positions, expected t <= max_step=",
                   cfg_.max_step);
    Queries qs;
    qs.pack(q, cfg_.kv_heads, scale(), cache_.size(), window_, cfg_.key_lengths);
    Plan plan;
    for (int64_t i = 0; i < qs.bg; ++i) {
      const int64_t e = qs.max_end(i);
      const int64_t s = qs.min_begin(i);
      if (s < e) plan.add_range(cache_, i, s, e, kChunk);
    }
    run(cache_, qs, plan, out);
    bytes_read_ = plan.positions * row_bytes();
  }

 private:
  int64_t window_;
};

}  // namespace

std::unique_ptr<DecodeImpl> make_exact(const Params& p, const DecodeConfig& cfg) {
  auto d = std::make_unique<ExactDecode>(cfg);
  d->spec = p.canonical();
  return d;
}

std::unique_ptr<DecodeImpl> make_local(const Params& p, const DecodeConfig& cfg) {
  auto d = std::make_unique<LocalDecode>(cfg, p.get_int("window"));
  d->spec = p.canonical();
  return d;
}

}  // namespace attnkit::decode
