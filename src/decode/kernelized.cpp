// Decode backends `performer` and `linear`: one KernelizedState (S = Σφ(k)vᵀ, z = Σφ(k)) per
// (batch, kv head). Appended positions wait, unabsorbed, while they may still be among the next
// attend's t positions (at most max_step of them); attend() absorbs them one at a time, each
// followed by the queries of its position, which is exactly the causal recurrence.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../core/parallel_errors.hpp"
#include "attnkit/error.hpp"
#include "attnkit/kernelized.hpp"
#include "impl.hpp"

namespace attnkit::decode {

namespace {

class KernelizedDecode final : public DecodeImpl {
 public:
  KernelizedDecode(const DecodeConfig& cfg, std::unique_ptr<Backend> backend)
      : DecodeImpl(cfg), backend_(std::move(backend)) {
    if (cfg.storage != KvStorage::F32)
      detail::fail("decode: storage=", kv_storage_name(cfg.storage), " with backend ", backend_->spec(),
                   "; expected f32 (its recurrent state is float32, there is no KV cache to compress)");
    const auto& kb = dynamic_cast<const KernelizedBackend&>(*backend_);
    const int64_t bg = cfg.batch * cfg.kv_heads;
    states_.reserve(static_cast<size_t>(bg));
    for (int64_t i = 0; i < bg; ++i)
      states_.emplace_back(kb, cfg.d, cfg.d_v, cfg.scale, i / cfg.kv_heads, i % cfg.kv_heads);
    m_ = kb.feature_dim(cfg.d);
    pending_.assign(static_cast<size_t>(bg * cfg.max_step * (cfg.d + cfg.d_v)), 0.0f);
  }

  int64_t size() const override { return absorbed_ + npend_; }
  int64_t bytes() const override {
    return static_cast<int64_t>(states_.size()) * m_ * (cfg_.d_v + 1) * 4 +
           static_cast<int64_t>(pending_.size() * sizeof(float));
  }

  void append(ConstView k, ConstView v) override {
    check_usable();
    const int64_t t = check_kv(cfg_, k, v);
    const int64_t bg = cfg_.batch * cfg_.kv_heads, tok = cfg_.d + cfg_.d_v;
    const int64_t over = std::max<int64_t>(0, npend_ + t - cfg_.max_step);  // must be absorbed now
    const int64_t from_pend = std::min(over, npend_), from_new = over - from_pend;
    ParallelErrors errors;  // the state's products allocate: bad_alloc for the caller, not an abort
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < bg; ++i)
      errors.run([&] {
        const int64_t b = i / cfg_.kv_heads, g = i % cfg_.kv_heads;
        float* pend = pending_.data() + i * cfg_.max_step * tok;
        for (int64_t j = 0; j < from_pend; ++j) push(i, absorbed_ + j, pend + j * tok, pend + j * tok + cfg_.d);
        std::memmove(pend, pend + from_pend * tok, static_cast<size_t>((npend_ - from_pend) * tok) * sizeof(float));
        for (int64_t j = 0; j < from_new; ++j) push(i, absorbed_ + from_pend + j, k.row(b, g, j), v.row(b, g, j));
        for (int64_t j = from_new; j < t; ++j) {
          float* dst = pend + (npend_ - from_pend + j - from_new) * tok;
          std::memcpy(dst, k.row(b, g, j), static_cast<size_t>(cfg_.d) * sizeof(float));
          std::memcpy(dst + cfg_.d, v.row(b, g, j), static_cast<size_t>(cfg_.d_v) * sizeof(float));
        }
      });
    fail_if(errors);
    absorbed_ += over;
    npend_ += t - over;
  }

  void attend(ConstView q, MutView out) override {
    check_usable();
    const int64_t t = check_attend(q, out);
    if (t > npend_)
      detail::fail("attend: t=", t, " but only the last ", npend_,
                   " positions are not yet absorbed into the recurrent state; expected t <= ", npend_,
                   " (each position is decoded once, and at most max_step=", cfg_.max_step, " at a time)");
    const int64_t bg = cfg_.batch * cfg_.kv_heads, tok = cfg_.d + cfg_.d_v, group = cfg_.heads / cfg_.kv_heads;
    const int64_t skip = npend_ - t;
    ParallelErrors errors;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < bg; ++i)
      errors.run([&] {
        const int64_t b = i / cfg_.kv_heads, g = i % cfg_.kv_heads;
        const float* pend = pending_.data() + i * cfg_.max_step * tok;
        for (int64_t j = 0; j < npend_; ++j) {
          push(i, absorbed_ + j, pend + j * tok, pend + j * tok + cfg_.d);
          if (j < skip) continue;
          for (int64_t hl = 0; hl < group; ++hl) {
            const int64_t h = g * group + hl;
            try {
              states_[static_cast<size_t>(i)].query(q.row(b, h, j - skip), out.row(b, h, j - skip));
            } catch (const Error& e) {  // the state names no batch entry or head: add them
              detail::fail("attend: batch ", b, ", head ", h, ", new position ", j - skip, " of ", t, ": ", e.what());
            }
          }
        }
      });
    fail_if(errors);
    absorbed_ += npend_;
    npend_ = 0;
    bytes_read_ = static_cast<int64_t>(states_.size()) * m_ * (cfg_.d_v + 1) * 4;
  }

 private:
  // An exception inside the parallel loops (out of memory, or a query whose features underflowed
  // float32 past the floor of KernelizedState::query) leaves some heads updated and others
  // not: the recurrent state is then lost for good, and every later call says so instead of
  // decoding from a state that mixes steps.
  void fail_if(const ParallelErrors& errors) {
    if (!errors.failed()) return;
    broken_ = true;
    errors.rethrow();
  }
  void check_usable() const {
    if (broken_)
      detail::fail("decoder: its recurrent state was lost to an earlier exception (out of memory, or features "
                   "underflowing float32) inside append or attend; expected a new Decoder");
  }

  // Absorbs position pos of (batch, kv head) i unless key_lengths marks it as padding.
  void push(int64_t i, int64_t pos, const float* k, const float* v) {
    if (!cfg_.key_lengths.empty() && pos >= cfg_.key_lengths[static_cast<size_t>(i / cfg_.kv_heads)]) return;
    states_[static_cast<size_t>(i)].push(k, v);
  }

  std::unique_ptr<Backend> backend_;  // owns the feature map the states use
  std::vector<KernelizedState> states_;
  int64_t m_ = 0;
  std::vector<float> pending_;  // [bg][max_step][k d | v d_v]
  int64_t npend_ = 0, absorbed_ = 0;
  bool broken_ = false;  // see fail_if
};

}  // namespace

std::unique_ptr<DecodeImpl> make_kernelized(const ParsedSpec& spec, const DecodeConfig& cfg) {
  auto backend = make_from(spec.name == "performer" ? performer_info() : linear_info(), spec);
  const std::string canonical = backend->spec();
  auto d = std::make_unique<KernelizedDecode>(cfg, std::move(backend));
  d->spec = canonical;
  return d;
}

}  // namespace attnkit::decode
