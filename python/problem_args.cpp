#include "problem_args.hpp"

namespace attnkit::python {

ProblemArgs problem_args(py::handle q, py::handle k, py::handle v, py::handle out, bool causal,
                         py::handle key_lengths, const std::optional<double>& scale, bool copy) {
  ProblemArgs a;
  a.q = as_array(q, "q", copy);
  a.k = as_array(k, "k", copy);
  a.v = as_array(v, "v", copy);
  if (out.is_none()) {
    const std::array<int64_t, 4> shape{a.q.shape[0], a.q.shape[1], a.q.shape[2], a.v.shape[3]};
    py::array_t<float> o = new_output(shape, a.q.rank);
    a.out = as_array(o, "out", false, true);
    a.result = to_caller(o, a.q.torch);
  } else {
    a.out = as_array(out, "out", false, true);
    a.result = py::reinterpret_borrow<py::object>(out);
  }
  Problem& p = a.problem;
  p.q = a.q.cview();
  p.k = a.k.cview();
  p.v = a.v.cview();
  p.out = a.out.mview();
  p.scale = scale_arg(scale);
  p.mask.causal = causal;
  p.mask.key_lengths = key_lengths_arg(key_lengths, a.q.shape[0]);
  p.validate();  // every shape error before any work (names the argument)
  return a;
}

ProblemArgs problem_args_scratch(py::handle q, py::handle k, py::handle v, bool causal, py::handle key_lengths,
                                 const std::optional<double>& scale, bool copy) {
  ProblemArgs a = problem_args(q, k, v, py::none(), causal, key_lengths, scale, copy);
  a.result = py::none();
  return a;
}

}  // namespace attnkit::python
