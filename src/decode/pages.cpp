// Decode backend `pages:page=P,keep=K` (Quest, Tang et al. 2024): per page of P positions the
// per-channel min and max of the stored keys; a query's page bound Σ_c max(q_c·lo_c, q_c·hi_c) is
// >= its score with every key of the page. Exact attention over the best ceil(K/P) pages plus the
// pages of the newest positions, split across threads like exact.
#include <omp.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "attnkit/error.hpp"
#include "cache_impl.hpp"
#include "kernel.hpp"

namespace attnkit::decode {

namespace {

class PagesDecode final : public CacheImpl {
 public:
  PagesDecode(const DecodeConfig& cfg, int64_t page, int64_t keep)
      : CacheImpl(cfg, KvCache(cfg.batch, cfg.kv_heads, cfg.capacity, cfg.d, cfg.d_v, cfg.storage)),
        page_(page),
        keep_pages_((keep + page - 1) / page),
        npages_((cfg.capacity + page - 1) / page),
        bounds_(static_cast<size_t>(cfg.batch * cfg.kv_heads * npages_ * 2 * cfg.d)),
        selected_(static_cast<size_t>(cfg.batch * cfg.kv_heads)) {}

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
        float* lo = bounds_.data() + (i * npages_ + p / page_) * 2 * d;
        float* hi = lo + d;
        if (p % page_ == 0) {
          std::copy(row.begin(), row.end(), lo);
          std::copy(row.begin(), row.end(), hi);
        } else {
          for (int64_t c = 0; c < d; ++c) {
            lo[c] = std::min(lo[c], row[static_cast<size_t>(c)]);
            hi[c] = std::max(hi[c], row[static_cast<size_t>(c)]);
          }
        }
      }
    }
  }

  int64_t bytes() const override {
    return cache_.bytes() + static_cast<int64_t>(bounds_.size() * sizeof(float));
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
    const int64_t d = cfg_.d, real_rows = qs.group * t;
    const int64_t forced0 = (size - t) / page_;  // pages of the new positions (and the newest) are always read
    std::vector<int64_t> scored(static_cast<size_t>(qs.bg), 0);

#pragma omp parallel
    {
      std::vector<float> bound, best, score;
#pragma omp for schedule(dynamic, 1)
      for (int64_t i = 0; i < qs.bg; ++i) {
        const int64_t e = qs.max_end(i);
        std::vector<int64_t>& sel = selected_[static_cast<size_t>(i)];
        sel.clear();
        if (e <= 0) continue;
        const int64_t last = (e - 1) / page_;             // last page with a visible position
        const int64_t cand = std::min(forced0, last + 1);  // pages [0, cand) compete
        scored[static_cast<size_t>(i)] = cand;
        if (cand <= keep_pages_) {
          for (int64_t p = 0; p < cand; ++p) sel.push_back(p);
        } else {
          // score(page) = max over rows of (bound_r(page) - best_r): the group shares one selection.
          bound.resize(static_cast<size_t>(cand));
          score.assign(static_cast<size_t>(cand), -std::numeric_limits<float>::infinity());
          const float* bnd = bounds_.data() + i * npages_ * 2 * d;
          for (int64_t r = 0; r < real_rows; ++r) {
            kern.page_bounds(qs.q.data() + (i * qs.rows + r) * d, d, bnd, cand, bound.data());
            const float top = *std::max_element(bound.begin(), bound.end());
            for (int64_t p = 0; p < cand; ++p)
              score[static_cast<size_t>(p)] = std::max(score[static_cast<size_t>(p)], bound[static_cast<size_t>(p)] - top);
          }
          std::vector<int64_t> idx(static_cast<size_t>(cand));
          for (int64_t p = 0; p < cand; ++p) idx[static_cast<size_t>(p)] = p;
          // Ties broken by page index: the selection is a function of the input only.
          auto better = [&](int64_t a, int64_t b) {
            const float sa = score[static_cast<size_t>(a)], sb = score[static_cast<size_t>(b)];
            return sa > sb || (sa == sb && a < b);
          };
          std::nth_element(idx.begin(), idx.begin() + keep_pages_, idx.end(), better);
          sel.assign(idx.begin(), idx.begin() + keep_pages_);
          std::sort(sel.begin(), sel.end());
        }
        for (int64_t p = cand; p <= last; ++p) sel.push_back(p);
      }
    }

    // Work items: runs of consecutive pages, at most kChunk positions per item.
    Plan plan;
    int64_t bound_reads = 0;
    for (int64_t i = 0; i < qs.bg; ++i) {
      const std::vector<int64_t>& sel = selected_[static_cast<size_t>(i)];
      const int64_t e = qs.max_end(i);
      bound_reads += scored[static_cast<size_t>(i)] > keep_pages_ ? scored[static_cast<size_t>(i)] : 0;
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
    bytes_read_ = plan.positions * row_bytes() + bound_reads * 2 * d * static_cast<int64_t>(sizeof(float));
  }

 private:
  int64_t page_, keep_pages_, npages_;
  std::vector<float> bounds_;                 // [bg][page][lo d | hi d]
  std::vector<std::vector<int64_t>> selected_;  // per bg, the last attend's pages
};

}  // namespace

std::unique_ptr<DecodeImpl> make_pages(const Params& p, const DecodeConfig& cfg) {
  auto d = std::make_unique<PagesDecode>(cfg, p.get_int("page"), p.get_int("keep"));
  d->spec = p.canonical();
  return d;
}

}  // namespace attnkit::decode
