// Decode backend `pages:page=P,keep=K` (Quest, Tang et al. 2024): per page of P positions the
// per-channel min and max of the stored keys; a query's page bound Σ_c max(q_c·lo_c, q_c·hi_c) is
// >= its score with every key of the page. Exact attention over the best ceil(K/P) pages plus the
// pages of the newest positions, split across threads like exact.
//
// Bytes per attend (what makes pages fast): the bounds are stored as bfloat16, min rounded down and
// max rounded up (so the bound stays a true upper bound), 2·d·2 bytes per page — at P = 16 that is
// 1/16 of an f32 page's keys and values; they are read once for all query rows of a group
// (q split into its positive and negative parts: bound = Σ q⁺·hi + q⁻·lo, two FMAs per channel).
// They are stored in blocks of kBoundLanes pages, channel-major within a block (kernel.hpp), so
// the scan's vectors run over pages and need no horizontal sums.
// The scan is split into blocks of pages across the threads, the choice is a partial selection
// (nth_element on a copy for the threshold, then a pass in page order), and the kept pages are read
// by the split-K engine, which requests the page after next while computing the current one.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../core/parallel_errors.hpp"
#include "attnkit/error.hpp"
#include "cache_impl.hpp"
#include "kernel.hpp"
#include "memory.hpp"

namespace attnkit::decode {

namespace {

constexpr int64_t kScanPages = 256;  // pages per scan work item
static_assert(kScanPages % kBoundLanes == 0, "scan items start at a block of bounds");

// bfloat16 bits of x rounded toward -inf (down) or +inf (up): the rounded value brackets x. NaN stays NaN.
uint16_t bf16_round(float x, bool up) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  const uint16_t t = static_cast<uint16_t>(u >> 16);  // truncation: toward zero
  if ((u & 0xffffu) == 0) return t;                   // exact
  const bool neg = (u >> 31) != 0;
  // Toward zero is down for positives and up for negatives; otherwise one ulp further from zero.
  return (up != neg) ? static_cast<uint16_t>(t + 1) : t;
}

// Sort key of a page score: ascending keys = descending score; a NaN score sorts last, -0 and +0
// alike. Branchless, for the vectoriser.
inline uint32_t score_key(float score) {
  score += 0.0f;  // -0 -> +0
  uint32_t u;
  std::memcpy(&u, &score, 4);
  const uint32_t asc = u ^ ((0u - (u >> 31)) | 0x80000000u);  // ascending with the float order
  return score == score ? ~asc : 0xffffffffu;                   // NaN: the lowest score
}

// The largest of x[0..n) that is not NaN (-inf if none): 8 running maxima, for the vectoriser.
inline float row_max(const float* x, int64_t n) {
  float m[8];
  for (float& v : m) v = -std::numeric_limits<float>::infinity();
  int64_t p = 0;
  for (; p + 8 <= n; p += 8)
    for (int l = 0; l < 8; ++l) m[l] = x[p + l] > m[l] ? x[p + l] : m[l];
  for (; p < n; ++p) m[0] = x[p] > m[0] ? x[p] : m[0];
  for (int l = 1; l < 8; ++l) m[0] = m[l] > m[0] ? m[l] : m[0];
  return m[0];
}

class PagesDecode final : public CacheImpl {
 public:
  PagesDecode(const DecodeConfig& cfg, int64_t page, int64_t keep)
      : CacheImpl(cfg, KvCache(cfg.batch, cfg.kv_heads, cfg.capacity, cfg.d, cfg.d_v, cfg.storage)),
        page_(page),
        keep_pages_((keep + page - 1) / page),
        npages_((cfg.capacity + page - 1) / page),
        nblocks_((npages_ + kBoundLanes - 1) / kBoundLanes),
        bounds_n_(cfg.batch * cfg.kv_heads * nblocks_ * 2 * cfg.d * kBoundLanes),
        bounds_mem_(alloc_large(bounds_n_ * int64_t{sizeof(uint16_t)})),
        bounds_(reinterpret_cast<uint16_t*>(bounds_mem_.get())),
        selected_(static_cast<size_t>(cfg.batch * cfg.kv_heads)) {
    std::memset(bounds_, 0, static_cast<size_t>(bounds_n_) * sizeof(uint16_t));  // the scan reads whole blocks
  }

  // Appends, then widens the bounds of the pages the new positions fall in with their stored
  // (dequantised) keys, so the bound holds for what attention will read.
  void append(ConstView k, ConstView v) override {
    const int64_t p0 = cache_.size();
    cache_.append(k, v);
    const int64_t p1 = cache_.size(), d = cfg_.d, bg = cfg_.batch * cfg_.kv_heads;
#pragma omp parallel for schedule(static) if (bg * (p1 - p0) * d > (1 << 16))
    for (int64_t i = 0; i < bg; ++i) {
      std::vector<float> row(static_cast<size_t>(d));
      for (int64_t p = p0; p < p1; ++p) {
        cache_.key(i / cfg_.kv_heads, i % cfg_.kv_heads, p, row.data());
        const int64_t pg = p / page_;
        uint16_t* lo = bounds_ + (i * nblocks_ + pg / kBoundLanes) * 2 * d * kBoundLanes + pg % kBoundLanes;
        uint16_t* hi = lo + d * kBoundLanes;
        const bool first = p % page_ == 0;
        for (int64_t c = 0; c < d; ++c) {
          const float x = row[static_cast<size_t>(c)];
          const int64_t o = c * kBoundLanes;
          const float l = first ? x : std::fmin(from_bf16(lo[o]), x);
          const float h = first ? x : std::fmax(from_bf16(hi[o]), x);
          lo[o] = bf16_round(l, false);
          hi[o] = bf16_round(h, true);
        }
      }
    }
  }

  int64_t bytes() const override {
    return cache_.bytes() + bounds_n_ * int64_t{sizeof(uint16_t)};
  }

  std::vector<int64_t> selected_pages(int64_t b, int64_t g) const override {
    return selected_[static_cast<size_t>(b * cfg_.kv_heads + g)];
  }

  void attend(ConstView q, MutView out) override {
    check_attend(q, out);
    Queries qs;
    const int64_t size = cache_.size(), t = q.shape[2];
    qs.pack(q, cfg_.kv_heads, scale(), size, 0, cfg_.key_lengths);
    const Kernels& kern = kernels();
    const int64_t d = cfg_.d, rows = qs.rows, real_rows = qs.group * t, bg = qs.bg;
    const int64_t forced0 = (size - t) / page_;  // pages of the new positions (and the newest) are always read

    // Pages [0, cand) compete; the rest up to `last` (the newest) are always read.
    std::vector<int64_t> cand(static_cast<size_t>(bg)), last(static_cast<size_t>(bg));
    for (int64_t i = 0; i < bg; ++i) {
      const int64_t e = qs.max_end(i);
      last[static_cast<size_t>(i)] = e > 0 ? (e - 1) / page_ : -1;
      cand[static_cast<size_t>(i)] = e > 0 ? std::min(forced0, last[static_cast<size_t>(i)] + 1) : 0;
    }

    // 1. Bounds of every competing page for every query row: blocks of pages over the threads.
    //    q⁺ = max(q, 0), q⁻ = min(q, 0) per row (padding rows are zero and bound nothing).
    std::vector<float> qpn(static_cast<size_t>(bg * rows * 2 * d));
    for (int64_t i = 0; i < bg * rows; ++i)
      for (int64_t c = 0; c < d; ++c) {
        const float x = qs.q[static_cast<size_t>(i * d + c)];
        qpn[static_cast<size_t>(i * 2 * d + c)] = std::max(x, 0.0f);
        qpn[static_cast<size_t>(i * 2 * d + d + c)] = std::min(x, 0.0f);
      }
    const int64_t bstride = nblocks_ * kBoundLanes;  // the scan writes whole blocks of pages
    std::vector<float> bound(static_cast<size_t>(bg * rows * bstride));  // [bg][row][page]
    std::vector<std::pair<int64_t, int64_t>> scan;                     // (bg, first page)
    int64_t bound_pages = 0;
    for (int64_t i = 0; i < bg; ++i)
      if (cand[static_cast<size_t>(i)] > keep_pages_) {
        bound_pages += (cand[static_cast<size_t>(i)] + kBoundLanes - 1) / kBoundLanes * kBoundLanes;  // whole blocks
        for (int64_t p = 0; p < cand[static_cast<size_t>(i)]; p += kScanPages) scan.emplace_back(i, p);
      }
    const int64_t nscan = static_cast<int64_t>(scan.size());
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t w = 0; w < nscan; ++w) {
      const auto [i, p0] = scan[static_cast<size_t>(w)];
      const int64_t np = std::min(kScanPages, cand[static_cast<size_t>(i)] - p0);
      const uint16_t* bnd = bounds_ + (i * nblocks_ + p0 / kBoundLanes) * 2 * d * kBoundLanes;
      for (int64_t rb = 0; rb < rows; rb += kRowBlock)
        kern.page_bounds(qpn.data() + (i * rows + rb) * 2 * d, d, bnd, np,
                         bound.data() + (i * rows + rb) * bstride + p0, bstride);
    }

    // 2. Per (batch, kv head): score(page) = max over the rows of (bound − that row's best bound),
    //    so the group shares one selection; the best keep_pages by a partial selection.
    ParallelErrors errors;  // an exception (bad_alloc) leaves the region for the caller, not as an abort
#pragma omp parallel
    {
      std::vector<float> score;
      std::vector<uint32_t> key, order;
#pragma omp for schedule(dynamic, 1)
      for (int64_t i = 0; i < bg; ++i)
        errors.run([&] {
          std::vector<int64_t>& sel = selected_[static_cast<size_t>(i)];
          sel.clear();
          const int64_t nc = cand[static_cast<size_t>(i)];
          if (last[static_cast<size_t>(i)] < 0) return;
          if (nc <= keep_pages_) {
            for (int64_t p = 0; p < nc; ++p) sel.push_back(p);
          } else {
            // Loops written for the vectoriser (8 running maxima, a select per element, branchless
            // keys and picks): the selection ran at ~66 us per (batch, kv head) at N = 65536 as
            // scalar loops with a branch per element.
            score.assign(static_cast<size_t>(nc), -std::numeric_limits<float>::infinity());
            for (int64_t r = 0; r < real_rows; ++r) {
              const float* br = bound.data() + (i * rows + r) * bstride;
              const float top = row_max(br, nc);
              float* sc = score.data();
              for (int64_t p = 0; p < nc; ++p) {
                const float x = br[p] - top;
                sc[p] = x > sc[p] ? x : sc[p];  // a NaN never wins, as in row_max
              }
            }
            key.resize(static_cast<size_t>(nc));
            for (int64_t p = 0; p < nc; ++p) key[static_cast<size_t>(p)] = score_key(score[static_cast<size_t>(p)]);
            // The best keep_pages: the keep_pages-th smallest key T by a partial selection of a copy,
            // then one pass in page order takes the keys below T and the first pages of key T (ties
            // go to the lower page index: the selection is a function of the input only), so `sel`
            // comes out sorted without a sort.
            order.assign(key.begin(), key.end());
            std::nth_element(order.begin(), order.begin() + (keep_pages_ - 1), order.end());
            const uint32_t T = order[static_cast<size_t>(keep_pages_ - 1)];
            int64_t below = 0;
            for (int64_t p = 0; p < nc; ++p) below += key[static_cast<size_t>(p)] < T;
            int64_t ties = keep_pages_ - below, n = 0;
            sel.resize(static_cast<size_t>(nc));
            for (int64_t p = 0; p < nc; ++p) {
              const uint32_t kp = key[static_cast<size_t>(p)];
              const bool tie = kp == T && ties > 0;
              ties -= tie;
              sel[static_cast<size_t>(n)] = p;
              n += (kp < T) | tie;
            }
            sel.resize(static_cast<size_t>(n));
          }
          for (int64_t p = nc; p <= last[static_cast<size_t>(i)]; ++p) sel.push_back(p);
        });
    }
    errors.rethrow();

    // 3. Work items: runs of consecutive pages, at most kChunk positions per item, over the threads.
    Plan plan;
    for (int64_t i = 0; i < bg; ++i) {
      const std::vector<int64_t>& sel = selected_[static_cast<size_t>(i)];
      const int64_t e = qs.max_end(i);
      std::vector<std::pair<int64_t, int64_t>> runs;
      int64_t in_item = 0;
      for (const int64_t p : sel) {
        const int64_t a = p * page_, b = std::min(e, a + page_);
        if (a >= b) continue;
        if (in_item + (b - a) > kChunk && !runs.empty()) {
          plan.add_item(cache_, i, runs);
          runs.clear();
          in_item = 0;
        }
        if (!runs.empty() && runs.back().second == a)
          runs.back().second = b;
        else
          runs.emplace_back(a, b);
        in_item += b - a;
      }
      if (!runs.empty()) plan.add_item(cache_, i, runs);
    }
    run(cache_, qs, plan, out);
    bytes_read_ = plan.positions * row_bytes() + bound_pages * 2 * d * static_cast<int64_t>(sizeof(uint16_t));
  }

 private:
  int64_t page_, keep_pages_, npages_, nblocks_;
  // [bg][block of kBoundLanes pages][lo, hi][d][page in block], bfloat16 (lo rounded down, hi up)
  // Huge pages (alloc_large) like the cache: the scan streams them, and with 4 KiB pages it ran at
  // ~9 GB/s per core (a TLB miss and a stop of the hardware prefetcher every 4 KiB).
  int64_t bounds_n_;
  Bytes bounds_mem_;
  uint16_t* bounds_;
  std::vector<std::vector<int64_t>> selected_;  // per bg, the last attend's pages
};

}  // namespace

std::unique_ptr<DecodeImpl> make_pages(const Params& p, const DecodeConfig& cfg) {
  auto d = std::make_unique<PagesDecode>(cfg, p.get_int("page"), p.get_int("keep"));
  d->spec = p.canonical();
  return d;
}

}  // namespace attnkit::decode
