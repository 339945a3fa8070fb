#pragma once
// Internal to the adaptive family: the fp64 accounting of a backend whose output is exact softmax
// over a per-row key set (topk, pruned): implied weights and the a-posteriori error identity.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "attnkit/backend.hpp"

namespace attnkit::adaptive {

// The chosen keys of consecutive query rows, CSR: row r's keys are idx[first[r] .. first[r+1]),
// ascending, all visible to the row.
struct RowKeys {
  std::vector<int64_t> first{0};
  std::vector<int64_t> idx;
  void clear() {
    first.assign(1, 0);
    idx.clear();
  }
  void end_row() { first.push_back(static_cast<int64_t>(idx.size())); }
  int64_t rows() const { return static_cast<int64_t>(first.size()) - 1; }
};

// Fills `keys` with the key sets of every query row of (batch b, head h), rows 0..n_q-1.
using HeadKeys = std::function<void(int64_t b, int64_t h, RowKeys& keys)>;


// Per row: eps_i = full-softmax mass (fp64) outside the row's key set among its visible keys;
// prob_l1 = 2·eps_i and out_l2 = 2·eps_i·max_{visible j}||v_j||_2 (a row that sees keys but none
// of the set: L1 = 1, bound max ||v_j||; a row that sees nothing: 0 and 0).
// `rows` (optional): only those query rows, laid out as Backend::error_bound_rows says
// ((b·heads + h)·rows.size() + t); each costs O(n_k·d), so a check on sampled rows stays cheap.
ErrorBound set_error_bound(const Problem& p, const Shape& d, const std::string& description, const HeadKeys& keys,
                           const std::vector<int64_t>* rows = nullptr);

// w (n_q × n_k) = softmax over each row's key set in fp64, zeros elsewhere.
void set_weights(const Problem& p, const Shape& d, int64_t b, int64_t h, const RowKeys& keys, float* w);

}  // namespace attnkit::adaptive
