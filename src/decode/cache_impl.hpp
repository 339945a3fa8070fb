#pragma once
// Internal: the decode backends that keep a KvCache (exact, local, pages) share its append, size
// and memory accounting.
#include <cstdint>
#include <utility>

#include "attnkit/kv_cache.hpp"
#include "engine.hpp"
#include "impl.hpp"

namespace attnkit::decode {

class CacheImpl : public DecodeImpl {
 public:
  CacheImpl(const DecodeConfig& cfg, KvCache cache) : DecodeImpl(cfg), cache_(std::move(cache)) {}
  void append(ConstView k, ConstView v) override { cache_.append(k, v); }
  int64_t size() const override { return cache_.size(); }
  int64_t bytes() const override { return cache_.bytes(); }
  const KvCache& cache() const { return cache_; }

 protected:
  int64_t row_bytes() const { return cache_.key_row_bytes() + cache_.value_row_bytes(); }
  KvCache cache_;
};

// Positions per split-K work item: fixed, so the result does not depend on the thread count.
constexpr int64_t kChunk = 1024;

}  // namespace attnkit::decode
