#pragma once
// Internal: split-K decode over a KvCache. A Plan lists work items, each a few contiguous runs of
// cache slots of one (batch, kv head); run() gives every item a partial (max, sum, accumulator)
// per query row on the OpenMP threads and merges the partials of each (batch, kv head) in item
// order, so the result does not depend on the thread count.
#include <cstdint>
#include <vector>

#include "attnkit/kv_cache.hpp"
#include "attnkit/tensor.hpp"

namespace attnkit::decode {

struct Segment {
  int64_t slot0 = 0, pos0 = 0, count = 0;  // slots slot0.. hold positions pos0..
};

struct Item {
  int64_t bg = 0;                  // b * kv_heads + g
  int64_t seg_begin = 0, seg_end = 0;
};

struct Plan {
  std::vector<Segment> segs;
  std::vector<Item> items;  // ascending bg
  int64_t positions = 0;    // cache rows the plan reads (for bytes_read)

  // Positions [p0, p1) of (bg) held by `cache`, cut at multiples of `chunk` positions into items
  // (and at the ring's wrap into segments).
  void add_range(const KvCache& cache, int64_t bg, int64_t p0, int64_t p1, int64_t chunk);
  // One item of the given page runs (ascending, each [p0, p1)); the caller groups them.
  void add_item(const KvCache& cache, int64_t bg, const std::vector<std::pair<int64_t, int64_t>>& runs);
};

// The query rows of every (batch, kv head) for one attend: row r = local head * t + token i,
// padded to a multiple of kRowBlock.
struct Queries {
  int64_t group = 1, t = 1, rows = 0, bg = 0, d = 0;
  std::vector<float> q;              // [bg][rows][d], scaled
  std::vector<int64_t> begin, end;   // [bg][rows]

  // Token i of q [B, H, t, d] is position size - t + i; it sees positions [max(0, P - window + 1)
  // (window > 0), min(P + 1, key_lengths[b])).
  void pack(ConstView qv, int64_t kv_heads, float scale, int64_t size, int64_t window,
            const std::vector<int32_t>& key_lengths);
  int64_t max_end(int64_t bg_index) const;
  int64_t min_begin(int64_t bg_index) const;
};

// out [B, H, t, d_v] from the plan's cache rows.
void run(const KvCache& cache, const Queries& qs, const Plan& plan, MutView out);

}  // namespace attnkit::decode
