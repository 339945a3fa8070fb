#pragma once
// Internal: merging of half-open key ranges, shared by the pattern and the tile masks.
#include <algorithm>
#include <vector>

namespace attnkit::local {

// Sorts ranges (anything with `begin` and `end`) by begin and merges overlapping or touching ones
// in place: the result is ascending and disjoint.
template <class Range>
void merge_ranges(std::vector<Range>& v) {
  std::sort(v.begin(), v.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  size_t w = 0;
  for (size_t r = 0; r < v.size(); ++r) {
    if (w > 0 && v[r].begin <= v[w - 1].end)
      v[w - 1].end = std::max(v[w - 1].end, v[r].end);
    else
      v[w++] = v[r];
  }
  v.resize(w);
}

}  // namespace attnkit::local
