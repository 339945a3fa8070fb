// Split-K decode: partials per work item on the OpenMP threads, then a numerically safe merge.
#include "engine.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>

#include "../core/parallel_errors.hpp"
#include "attnkit/error.hpp"
#include "kernel.hpp"

namespace attnkit::decode {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Cuts [p0, p1) at the ring's wrap: each piece is contiguous in slots.
void add_segments(const KvCache& cache, int64_t p0, int64_t p1, std::vector<Segment>& out) {
  while (p0 < p1) {
    const int64_t s = cache.slot(p0);
    const int64_t n = std::min(p1 - p0, cache.capacity() - s);
    out.push_back({s, p0, n});
    p0 += n;
  }
}
}  // namespace

void Plan::add_range(const KvCache& cache, int64_t bg, int64_t p0, int64_t p1, int64_t chunk) {
  for (int64_t a = p0; a < p1;) {
    const int64_t e = std::min(p1, (a / chunk + 1) * chunk);
    Item it{bg, static_cast<int64_t>(segs.size()), 0};
    add_segments(cache, a, e, segs);
    it.seg_end = static_cast<int64_t>(segs.size());
    items.push_back(it);
    positions += e - a;
    a = e;
  }
}

void Plan::add_item(const KvCache& cache, int64_t bg, const std::vector<std::pair<int64_t, int64_t>>& runs) {
  Item it{bg, static_cast<int64_t>(segs.size()), 0};
  for (const auto& [p0, p1] : runs) {
    add_segments(cache, p0, p1, segs);
    positions += p1 - p0;
  }
  it.seg_end = static_cast<int64_t>(segs.size());
  items.push_back(it);
}

void Queries::pack(ConstView qv, int64_t kv_heads, float scale, int64_t size, int64_t window,
                   const std::vector<int32_t>& key_lengths) {
  const int64_t B = qv.shape[0], H = qv.shape[1];
  t = qv.shape[2];
  d = qv.shape[3];
  group = H / kv_heads;
  rows = (group * t + kRowBlock - 1) / kRowBlock * kRowBlock;
  bg = B * kv_heads;
  q.assign(static_cast<size_t>(bg * rows * d), 0.0f);
  begin.assign(static_cast<size_t>(bg * rows), 0);
  end.assign(static_cast<size_t>(bg * rows), 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < kv_heads; ++g) {
      const int64_t i0 = (b * kv_heads + g) * rows;
      for (int64_t hl = 0; hl < group; ++hl)
        for (int64_t i = 0; i < t; ++i) {
          const int64_t r = i0 + hl * t + i;
          const float* src = qv.row(b, g * group + hl, i);
          float* dst = q.data() + r * d;
          for (int64_t c = 0; c < d; ++c) dst[c] = src[c] * scale;
          const int64_t pos = size - t + i;
          int64_t e = pos + 1;
          if (!key_lengths.empty()) e = std::min<int64_t>(e, key_lengths[static_cast<size_t>(b)]);
          const int64_t s = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
          begin[r] = s;
          end[r] = std::max(e, s);
        }
    }
}

int64_t Queries::max_end(int64_t i) const {
  int64_t e = 0;
  for (int64_t r = 0; r < rows; ++r) e = std::max(e, end[i * rows + r]);
  return e;
}

int64_t Queries::min_begin(int64_t i) const {
  int64_t s = std::numeric_limits<int64_t>::max();
  for (int64_t r = 0; r < rows; ++r)
    if (end[i * rows + r] > begin[i * rows + r]) s = std::min(s, begin[i * rows + r]);
  return s;
}

void quantize_q16(const float* q, int64_t rows, int64_t d, int16_t* q16, float* scale) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = q + r * d;
    int16_t* o = q16 + r * d;
    float amax = 0;
    bool finite = true;
    for (int64_t c = 0; c < d; ++c) {
      finite &= std::isfinite(x[c]);
      amax = std::max(amax, std::fabs(x[c]));
    }
    if (!finite) {
      std::fill(o, o + d, int16_t{0});
      scale[r] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    if (amax == 0) {
      std::fill(o, o + d, int16_t{0});
      scale[r] = 0;
      continue;
    }
    const float inv = 32767.0f / amax;
    for (int64_t c = 0; c < d; ++c) {
      const float v = std::nearbyint(x[c] * inv);  // the default rounding mode: half to even
      o[c] = static_cast<int16_t>(std::clamp(v, -32767.0f, 32767.0f));
    }
    scale[r] = amax / 32767.0f;
  }
}

void run(const KvCache& cache, const Queries& qs, const Plan& plan, MutView out) {
  const Kernels& kern = kernels();  // outside the parallel region: a bad ATTNKIT_SIMD throws here
  const int64_t rows = qs.rows, dv = cache.d_v(), d = cache.d(), G = cache.kv_heads();
  const int64_t per = rows * (2 + dv);  // partial of one item: m, l, acc
  const int64_t nitems = static_cast<int64_t>(plan.items.size());
  const auto part = aligned_floats(static_cast<size_t>(std::max<int64_t>(1, nitems * per)));
  const int64_t eb = kv_storage_elem_bytes(cache.storage());
  const int64_t scratch_n = scratch_floats(rows, d, dv);
  // int8: q as int16 once per attend (integer dot products in the kernel).
  std::vector<int16_t> q16;
  std::vector<float> q16_scale;
  if (cache.storage() == KvStorage::Int8 && d <= kInt16MaxD) {
    q16.resize(static_cast<size_t>(qs.bg * rows * d));
    q16_scale.resize(static_cast<size_t>(qs.bg * rows));
    quantize_q16(qs.q.data(), qs.bg * rows, d, q16.data(), q16_scale.data());
  }

  // Threads take runs of consecutive items (each item still its own partial: the result does not
  // depend on the thread count), so that the kernel can request the next item's first rows while
  // it computes the last ones of this item: each item starting cold (a tile's rows requested at
  // once, then waited for) cost int8 decode ~4% at N = 65536, 2 threads (9.08 -> 8.71 ms per token
  // with 8 items per run, best of 5 alternating; exact f32 and pages a little too). At least 16
  // runs per thread keep dynamic scheduling's balance where a plan has few items (pages).
  const int64_t per_run = std::clamp<int64_t>(nitems / (16 * static_cast<int64_t>(omp_get_max_threads())), 1, 8);
  const int64_t nruns = (nitems + per_run - 1) / per_run;

  ParallelErrors errors;  // an exception (bad_alloc) leaves the region for the caller, not as an abort
#pragma omp parallel
  {
    std::optional<decltype(aligned_floats(0))> scratch;
    errors.run([&] { scratch.emplace(aligned_floats(static_cast<size_t>(scratch_n))); });
#pragma omp for schedule(dynamic, 1)
    for (int64_t run_i = 0; run_i < nruns; ++run_i) {
      const int64_t it0 = run_i * per_run, it1 = std::min(nitems, it0 + per_run);
      const int64_t seg0 = plan.items[static_cast<size_t>(it0)].seg_begin;
      const int64_t seg1 = plan.items[static_cast<size_t>(it1 - 1)].seg_end;
      for (int64_t it = it0; it < it1; ++it)
        errors.run([&] {
          const Item& item = plan.items[static_cast<size_t>(it)];
          float* m = part.get() + it * per;
          float* l = m + rows;
          float* acc = l + rows;
          std::fill(m, m + rows, kNegInf);
          std::fill(l, l + rows, 0.0f);
          std::fill(acc, acc + rows * dv, 0.0f);
          const int64_t b = item.bg / G, g = item.bg % G;
          Rows R;
          R.q = qs.q.data() + item.bg * rows * d;
          R.rows = rows;
          R.begin = qs.begin.data() + item.bg * rows;
          R.end = qs.end.data() + item.bg * rows;
          R.d = d;
          R.d_v = dv;
          if (!q16.empty()) {
            R.q16 = q16.data() + item.bg * rows * d;
            R.q16_scale = q16_scale.data() + item.bg * rows;
          }
          const auto* kb = static_cast<const unsigned char*>(cache.keys(b, g));
          const auto* vb = static_cast<const unsigned char*>(cache.values(b, g));
          const float* ks = cache.key_scales(b, g);
          const float* vs = cache.value_scales(b, g);
          // The blocks that follow in this run (the next item's too: items of a run are one
          // thread's, in order), for the kernel's prefetch.
          int64_t next_item = it;
          for (int64_t si = item.seg_begin; si < item.seg_end; ++si) {
            const Segment& sg = plan.segs[static_cast<size_t>(si)];
            Block blk;
            blk.storage = cache.storage();
            blk.k = kb + sg.slot0 * d * eb;
            blk.v = vb + sg.slot0 * dv * eb;
            blk.ks = ks ? ks + sg.slot0 : nullptr;
            blk.vs = vs ? vs + sg.slot0 : nullptr;
            blk.pos0 = sg.pos0;
            blk.count = sg.count;
            blk.first_requested = si > seg0;
            for (int64_t a = 0; a < 2 && si + 1 + a < seg1; ++a) {
              const int64_t sn = si + 1 + a;
              while (plan.items[static_cast<size_t>(next_item)].seg_end <= sn) ++next_item;
              const int64_t nbg = plan.items[static_cast<size_t>(next_item)].bg;
              const Segment& nx = plan.segs[static_cast<size_t>(sn)];
              blk.next_k[a] = static_cast<const unsigned char*>(cache.keys(nbg / G, nbg % G)) + nx.slot0 * d * eb;
              blk.next_v[a] = static_cast<const unsigned char*>(cache.values(nbg / G, nbg % G)) + nx.slot0 * dv * eb;
              blk.next_count[a] = nx.count;
            }
            next_item = it;
            kern.attend_block(R, blk, m, l, acc, scratch->get());
          }
        });
    }
  }
  errors.rethrow();

  // Merge: items of one bg are adjacent. weight_i = exp(m_i − max m) ∈ [0, 1]: nothing overflows.
  std::vector<int64_t> first(static_cast<size_t>(qs.bg + 1), nitems);
  for (int64_t it = nitems - 1; it >= 0; --it) first[static_cast<size_t>(plan.items[static_cast<size_t>(it)].bg)] = it;
  for (int64_t i = qs.bg - 1; i >= 0; --i)
    first[static_cast<size_t>(i)] = std::min(first[static_cast<size_t>(i)], first[static_cast<size_t>(i + 1)]);
  const int64_t real_rows = qs.group * qs.t;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < qs.bg; ++i) {
    const int64_t b = i / G, g = i % G;
    const int64_t i0 = first[static_cast<size_t>(i)], i1 = first[static_cast<size_t>(i + 1)];
    for (int64_t r = 0; r < real_rows; ++r) {
      float* o = out.row(b, g * qs.group + r / qs.t, r % qs.t);
      float mx = kNegInf;
      bool nan = false;
      for (int64_t it = i0; it < i1; ++it) {
        const float mi = part[static_cast<size_t>(it * per + r)];
        nan |= std::isnan(mi);
        mx = std::max(mx, mi);
      }
      if (nan) {
        std::fill(o, o + dv, std::numeric_limits<float>::quiet_NaN());
        continue;
      }
      std::fill(o, o + dv, 0.0f);
      if (mx == kNegInf) continue;  // the row sees no position: zeros, as Problem defines
      float lsum = 0;
      for (int64_t it = i0; it < i1; ++it) {
        const float* m = part.get() + it * per;
        if (m[r] == kNegInf) continue;
        const float w = std::exp(m[r] - mx);
        lsum += w * m[rows + r];
        const float* acc = m + 2 * rows + r * dv;
        for (int64_t c = 0; c < dv; ++c) o[c] += w * acc[c];
      }
      for (int64_t c = 0; c < dv; ++c) o[c] /= lsum;
    }
  }
}

}  // namespace attnkit::decode
