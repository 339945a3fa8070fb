#include "topk_select.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace attnkit::adaptive {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Keeps the best k of (s, j) in place: larger score first, then lower index.
void compact(std::vector<float>& s, std::vector<int64_t>& j, int64_t k, std::vector<int64_t>& order) {
  const int64_t n = static_cast<int64_t>(s.size());
  if (n <= k) return;
  order.resize(static_cast<size_t>(n));
  for (int64_t x = 0; x < n; ++x) order[static_cast<size_t>(x)] = x;
  auto better = [&](int64_t a, int64_t b) {
    const float sa = s[static_cast<size_t>(a)], sb = s[static_cast<size_t>(b)];
    return sa > sb || (sa == sb && j[static_cast<size_t>(a)] < j[static_cast<size_t>(b)]);
  };
  std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), better);
  std::vector<float> s2(static_cast<size_t>(k));
  std::vector<int64_t> j2(static_cast<size_t>(k));
  for (int64_t x = 0; x < k; ++x) {
    s2[static_cast<size_t>(x)] = s[static_cast<size_t>(order[static_cast<size_t>(x)])];
    j2[static_cast<size_t>(x)] = j[static_cast<size_t>(order[static_cast<size_t>(x)])];
  }
  s.swap(s2);
  j.swap(j2);
}

}  // namespace

void select_topk(const Problem& p, const Shape& d, int64_t b, int64_t h, int64_t i0, int64_t rows, int64_t k,
                 TopkScratch& sc, RowKeys& keys, std::vector<float>& chosen_s, std::vector<char>& nan_rows) {
  const int64_t g = h / d.group();
  const float scale = p.effective_scale();
  const int64_t ke_max = p.key_end(b, i0 + rows - 1);  // key_end is non-decreasing in the row
  sc.cand_s.resize(static_cast<size_t>(rows));
  sc.cand_j.resize(static_cast<size_t>(rows));
  std::vector<float> thresh(static_cast<size_t>(rows), kNegInf);
  std::vector<char> full(static_cast<size_t>(rows), 0);  // holds k candidates: thresh is live
  nan_rows.assign(static_cast<size_t>(rows), 0);
  for (int64_t r = 0; r < rows; ++r) {
    sc.cand_s[static_cast<size_t>(r)].clear();
    sc.cand_j[static_cast<size_t>(r)].clear();
  }
  sc.scores.resize(static_cast<size_t>(rows * kTopkTile));
  for (int64_t k0 = 0; k0 < ke_max; k0 += kTopkTile) {
    const int64_t nk = std::min(kTopkTile, ke_max - k0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(nk),
                static_cast<int>(d.d), scale, p.q.row(b, h, i0), static_cast<int>(p.q.stride[2]), p.k.row(b, g, k0),
                static_cast<int>(p.k.stride[2]), 0.0f, sc.scores.data(), static_cast<int>(nk));
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t ke = std::min(p.key_end(b, i0 + r), k0 + nk);
      std::vector<float>& cs = sc.cand_s[static_cast<size_t>(r)];
      std::vector<int64_t>& cj = sc.cand_j[static_cast<size_t>(r)];
      const float* srow = sc.scores.data() + r * nk;
      const float t = thresh[static_cast<size_t>(r)];
      const bool live = full[static_cast<size_t>(r)];
      for (int64_t j = k0; j < ke; ++j) {
        float s = srow[j - k0];
        if (std::isnan(s)) {
          s = kNegInf;
          nan_rows[static_cast<size_t>(r)] = 1;
        }
        // A later key ties with an earlier one and loses: only strictly better scores enter.
        if (live && !(s > t)) continue;
        cs.push_back(s);
        cj.push_back(j);
      }
      if (static_cast<int64_t>(cs.size()) >= 2 * k) {
        compact(cs, cj, k, sc.order);
        thresh[static_cast<size_t>(r)] = *std::min_element(cs.begin(), cs.end());
        full[static_cast<size_t>(r)] = 1;
      }
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float>& cs = sc.cand_s[static_cast<size_t>(r)];
    std::vector<int64_t>& cj = sc.cand_j[static_cast<size_t>(r)];
    compact(cs, cj, k, sc.order);
    // Ascending key order: a fixed summation order in forward(), CSR order for the accounting.
    const int64_t n = static_cast<int64_t>(cs.size());
    sc.order.resize(static_cast<size_t>(n));
    for (int64_t x = 0; x < n; ++x) sc.order[static_cast<size_t>(x)] = x;
    std::sort(sc.order.begin(), sc.order.begin() + n,
              [&](int64_t a, int64_t c) { return cj[static_cast<size_t>(a)] < cj[static_cast<size_t>(c)]; });
    for (int64_t x = 0; x < n; ++x) {
      keys.idx.push_back(cj[static_cast<size_t>(sc.order[static_cast<size_t>(x)])]);
      chosen_s.push_back(cs[static_cast<size_t>(sc.order[static_cast<size_t>(x)])]);
    }
    keys.end_row();
  }
}

}  // namespace attnkit::adaptive
