#pragma once
// Internal: the interface behind attnkit::Decoder, the shared argument checks, and the factories of
// the decode backends (exact.cpp, local + pages in pages.cpp, kernelized.cpp).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attnkit/decode.hpp"
#include "attnkit/spec.hpp"

namespace attnkit {

class DecodeImpl {
 public:
  explicit DecodeImpl(const DecodeConfig& cfg) : cfg_(cfg) {}
  virtual ~DecodeImpl() = default;
  virtual void append(ConstView k, ConstView v) = 0;
  virtual void attend(ConstView q, MutView out) = 0;
  virtual int64_t size() const = 0;
  virtual int64_t bytes() const = 0;
  virtual std::vector<int64_t> selected_pages(int64_t, int64_t) const { return {}; }

  std::string spec;
  const DecodeConfig& config() const { return cfg_; }
  int64_t bytes_read() const { return bytes_read_; }

 protected:
  float scale() const;
  // q [B,H,t,d] and out [B,H,t,d_v] against the config; t <= size(); out not overlapping q.
  // Returns t.
  int64_t check_attend(ConstView q, MutView out) const;

  DecodeConfig cfg_;
  int64_t bytes_read_ = 0;
};

namespace decode {
// Validates sizes, heads % kv_heads, scale and key_lengths (throws attnkit::Error).
void check_config(const DecodeConfig& cfg);
// Checks k [B,H_kv,t,d] / v [B,H_kv,t,d_v] like KvCache::append (for states without a cache).
int64_t check_kv(const DecodeConfig& cfg, ConstView k, ConstView v);

std::unique_ptr<DecodeImpl> make_exact(const Params& p, const DecodeConfig& cfg);
std::unique_ptr<DecodeImpl> make_local(const Params& p, const DecodeConfig& cfg);
std::unique_ptr<DecodeImpl> make_pages(const Params& p, const DecodeConfig& cfg);
// name: performer or linear; the spec is resolved by the kernelized family's BackendInfo.
std::unique_ptr<DecodeImpl> make_kernelized(const ParsedSpec& spec, const DecodeConfig& cfg);
}  // namespace decode

}  // namespace attnkit
