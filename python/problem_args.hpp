#pragma once
// The arguments every attention call of the module shares (q, k, v, out, causal, key_lengths,
// scale, copy) turned into one attnkit::Problem over the caller's memory.
#include <optional>

#include "arrays.hpp"
#include "attnkit/problem.hpp"

namespace attnkit::python {

struct ProblemArgs {
  ArrayArg q, k, v, out;
  py::object result;  // what the call returns: `out` as given, or the new output in q's type
  Problem problem;
};

// Sees q, k, v (and `out` when not None; else a new C-order float32 output of q's rank,
// [B, H, n_q, d_v]) as views and fills the Problem. Raises TypeError / ValueError for the arrays
// (arrays.hpp) and attnkit.Error (a ValueError) for what Problem::validate refuses.
ProblemArgs problem_args(py::handle q, py::handle k, py::handle v, py::handle out, bool causal,
                         py::handle key_lengths, const std::optional<double>& scale, bool copy);

// Same without an output the caller sees: a scratch output for backends whose calls read only
// q, k, v but need a valid Problem (error_bound, weights).
ProblemArgs problem_args_scratch(py::handle q, py::handle k, py::handle v, bool causal, py::handle key_lengths,
                                 const std::optional<double>& scale, bool copy);

}  // namespace attnkit::python
