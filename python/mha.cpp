// attnkit.MultiheadAttention: attnkit::MultiHeadAttention built from a torch
// nn.MultiheadAttention state_dict, called on [B, n, d_model] activations (batch_first).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <string>

#include "arrays.hpp"
#include "attnkit/error.hpp"
#include "attnkit/mha.hpp"
#include "attnkit/registry.hpp"
#include "module.hpp"

namespace attnkit::python {

namespace {

using namespace pybind11::literals;

constexpr py::ssize_t kAligned = 0x0100;  // NPY_ARRAY_ALIGNED

struct PyMha {
  std::shared_ptr<const MultiHeadAttention> impl;
};

py::array numpy_of(py::handle obj, const std::string& name, bool copy) {
  py::object o = py::reinterpret_borrow<py::object>(obj);
  if (is_torch_tensor(obj)) o = torch_numpy(obj, name, copy);
  if (!py::isinstance<py::array>(o) || !py::array_t<float>::check_(o)) {
    if (!copy) {
      const std::string what = py::isinstance<py::array>(o) ? "dtype " + std::string(py::str(o.attr("dtype")))
                                                            : std::string(py::str(py::type::handle_of(o).attr("__name__")));
      throw py::type_error(name + ": " + what +
                           "; expected a float32 numpy array or torch CPU tensor (pass copy=True to convert)");
    }
    o = converted(o, name);
  }
  return py::reinterpret_borrow<py::array>(o);
}

std::string shape_text(const py::array& a) { return py::str(a.attr("shape")); }

// One state_dict tensor of the given shape, copied out (the layer keeps its own weights).
std::vector<float> weight(const py::array& a, const std::string& name, std::vector<int64_t> shape) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(static_cast<py::ssize_t>(i)) == shape[i];
  if (!ok) {
    std::string want = "[";
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    throw py::value_error("state_dict['" + name + "']: shape " + shape_text(a) + "; expected " + want + "]");
  }
  const auto dense = py::array_t<float, py::array::c_style>::ensure(a);  // weights are copied anyway
  std::vector<float> out(static_cast<size_t>(dense.size()));
  if (!out.empty()) std::memcpy(out.data(), dense.data(), out.size() * sizeof(float));
  return out;
}

PyMha make_layer(py::handle state_dict, int64_t heads, py::handle backend, bool copy) {
  if (!py::hasattr(state_dict, "items"))
    throw py::type_error("state_dict: " + std::string(py::str(py::type::handle_of(state_dict).attr("__name__"))) +
                         "; expected a mapping such as nn.MultiheadAttention.state_dict()");
  py::object in_w, in_b, out_w, out_b;
  for (py::handle item : state_dict.attr("items")()) {
    const auto kv = item.cast<py::tuple>();
    const std::string key = py::str(kv[0]);
    py::object value = kv[1];
    if (key == "in_proj_weight") in_w = value;
    else if (key == "in_proj_bias") in_b = value;
    else if (key == "out_proj.weight") out_w = value;
    else if (key == "out_proj.bias") out_b = value;
    else if (key == "q_proj_weight" || key == "k_proj_weight" || key == "v_proj_weight")
      throw py::value_error("state_dict['" + key + "']: separate projections (kdim/vdim != embed_dim) are not "
                            "supported; expected in_proj_weight");
    else if (key == "bias_k" || key == "bias_v")
      throw py::value_error("state_dict['" + key + "']: add_bias_kv is not supported; expected no bias_k / bias_v");
    else
      throw py::value_error("state_dict: unexpected key '" + key +
                            "'; expected in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias (strip a "
                            "module prefix first)");
  }
  if (!in_w || in_w.is_none()) throw py::value_error("state_dict: no 'in_proj_weight'; expected [3*d_model, d_model]");
  if (!out_w || out_w.is_none()) throw py::value_error("state_dict: no 'out_proj.weight'; expected [d_model, d_model]");
  const py::array ow = numpy_of(out_w, "state_dict['out_proj.weight']", copy);
  if (ow.ndim() != 2 || ow.shape(0) != ow.shape(1) || ow.shape(0) < 1)
    throw py::value_error("state_dict['out_proj.weight']: shape " + shape_text(ow) + "; expected [d_model, d_model]");
  const int64_t D = ow.shape(0);
  if (heads < 1 || D % heads != 0)
    throw py::value_error("heads: " + std::to_string(heads) + "; expected a divisor of d_model = " + std::to_string(D));
  TorchMhaWeights t;
  t.out_proj_weight = weight(ow, "out_proj.weight", {D, D});
  t.in_proj_weight = weight(numpy_of(in_w, "state_dict['in_proj_weight']", copy), "in_proj_weight", {3 * D, D});
  if (in_b && !in_b.is_none())
    t.in_proj_bias = weight(numpy_of(in_b, "state_dict['in_proj_bias']", copy), "in_proj_bias", {3 * D});
  if (out_b && !out_b.is_none())
    t.out_proj_bias = weight(numpy_of(out_b, "state_dict['out_proj.bias']", copy), "out_proj.bias", {D});
  std::shared_ptr<const Backend> b;
  if (py::isinstance<PyBackend>(backend)) b = backend.cast<const PyBackend&>().impl;
  else if (py::isinstance<py::str>(backend)) b = make_backend(backend.cast<std::string>());
  else throw py::type_error("backend: expected a spec string or an attnkit.Backend");
  return PyMha{std::make_shared<const MultiHeadAttention>(MultiHeadAttention::from_torch(D, heads, t, b))};
}

// Activations [B, n, d_model] or [n, d_model]: float32, C order (the layer reads them densely).
struct Seq {
  py::array array;
  bool torch = false;
  ConstSeq view;
};

Seq seq_arg(py::handle obj, const char* name, int64_t d_model, bool copy) {
  Seq s;
  if (obj.is_none()) throw py::type_error(std::string(name) + ": None; expected [B, n, d_model] float32");
  s.torch = is_torch_tensor(obj);
  s.array = numpy_of(obj, name, copy);
  const py::ssize_t r = s.array.ndim();
  if (r != 2 && r != 3)
    throw py::value_error(std::string(name) + ": shape " + shape_text(s.array) + "; expected [B, n, d_model] or [n, d_model]");
  if (!(s.array.flags() & py::array::c_style) || !(s.array.flags() & kAligned)) {
    if (!copy)
      throw py::value_error(std::string(name) + ": not C-contiguous (shape " + shape_text(s.array) +
                            "); expected dense [B, n, d_model] rows (pass copy=True to copy)");
    s.array = py::module_::import("numpy").attr("require")(s.array, py::dtype::of<float>(), py::make_tuple("C", "A"));
  }
  s.view.data = static_cast<const float*>(s.array.data());
  s.view.batch = r == 3 ? s.array.shape(0) : 1;
  s.view.seq = s.array.shape(r - 2);
  s.view.width = s.array.shape(r - 1);
  if (s.view.width != d_model)
    throw py::value_error(std::string(name) + ": last axis " + std::to_string(s.view.width) + "; expected d_model = " +
                          std::to_string(d_model));
  return s;
}

}  // namespace

void bind_mha(py::module_& m) {
  py::class_<PyMha>(m, "MultiheadAttention", R"doc(MultiheadAttention(state_dict, heads, backend="exact", *, copy=False)

torch.nn.MultiheadAttention(d_model, heads, batch_first=True)'s forward over any attnkit
backend. state_dict: the module's state_dict() (torch tensors or float32 arrays, PyTorch's
out x in layout): in_proj_weight [3*d_model, d_model], optional in_proj_bias [3*d_model],
out_proj.weight [d_model, d_model], optional out_proj.bias [d_model]. The weights are copied.
backend: spec string or attnkit.Backend. copy=True converts weights of another real dtype
(torch bfloat16 included; complex refused).
Not supported (ValueError naming the key): add_bias_kv, kdim/vdim != d_model.
Differences from PyTorch: a query that sees no key gives zeros (PyTorch: NaN); causal
cross-attention is bottom-right aligned. Calls release the GIL; one layer may be used from
several threads at once.)doc")
      .def(py::init(&make_layer), "state_dict"_a, "heads"_a, "backend"_a = "exact", py::kw_only(), "copy"_a = false,
           "__init__(state_dict, heads, backend=\"exact\", *, copy=False)\n\nSee attnkit.MultiheadAttention.")
      .def(
          "__call__",
          [](const PyMha& l, py::handle x, py::handle context, bool causal, py::handle key_lengths,
             std::optional<int> threads, bool copy) -> py::object {
            const int64_t D = l.impl->config().d_model;
            const Seq xs = seq_arg(x, "x", D, copy);
            std::optional<Seq> cs;
            if (!context.is_none()) cs = seq_arg(context, "context", D, copy);
            if (cs && cs->array.ndim() != xs.array.ndim())
              throw py::value_error("context: rank " + std::to_string(cs->array.ndim()) + "; expected x's rank " +
                                    std::to_string(xs.array.ndim()));
            std::vector<py::ssize_t> shape(xs.array.shape(), xs.array.shape() + xs.array.ndim());
            py::array_t<float> y(shape);
            const MutSeq ys{y.mutable_data(), xs.view.batch, xs.view.seq, D};
            Mask mask;
            mask.causal = causal;
            mask.key_lengths = key_lengths_arg(key_lengths, xs.view.batch);
            ThreadCount count(threads);
            {
              py::gil_scoped_release nogil;
              if (cs) l.impl->forward(xs.view, cs->view, ys, mask);
              else l.impl->forward(xs.view, ys, mask);
            }
            return to_caller(y, xs.torch);
          },
          "x"_a, "context"_a = py::none(), py::kw_only(), "causal"_a = false, "key_lengths"_a = py::none(),
          "threads"_a = py::none(), "copy"_a = false,
          R"doc(layer(x, context=None, *, causal=False, key_lengths=None, threads=None, copy=False)

y = out_proj(attention(x W_q, c W_k, c W_v)) with c = context (cross-attention) or x (self).
x: [B, n, d_model] (or [n, d_model]), context: [B, m, d_model] of x's rank; float32, C order
(other layouts refused unless copy=True). causal: PyTorch's causal attn_mask (-inf above the
diagonal). key_lengths: B ints, real keys per sequence (PyTorch's key_padding_mask with the
padding at the end). Returns y of x's shape, as a numpy array or a torch tensor like x.)doc")
      .def(
          "weights",
          [](const PyMha& l, py::handle x, int64_t batch, int64_t head, py::handle context, bool causal,
             py::handle key_lengths, bool copy) -> py::object {
            const ThreadCount omp_in_range(std::nullopt);  // OMP_NUM_THREADS within 1..4096
            const int64_t D = l.impl->config().d_model;
            const Seq xs = seq_arg(x, "x", D, copy);
            std::optional<Seq> cs;
            if (!context.is_none()) cs = seq_arg(context, "context", D, copy);
            const int64_t n = xs.view.seq, mk = cs ? cs->view.seq : n;
            if (n * mk > Backend::kMaxWeights)
              throw Error("x/context: n x m = " + std::to_string(n) + " x " + std::to_string(mk) +
                          " weights; expected at most " + std::to_string(Backend::kMaxWeights));
            Mask mask;
            mask.causal = causal;
            mask.key_lengths = key_lengths_arg(key_lengths, xs.view.batch);
            py::array_t<float> w({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(mk)});
            float* wp = w.mutable_data();
            {
              py::gil_scoped_release nogil;
              if (cs) l.impl->weights(xs.view, cs->view, mask, batch, head, wp);
              else l.impl->weights(xs.view, mask, batch, head, wp);
            }
            return to_caller(w, xs.torch);
          },
          "x"_a, "b"_a = 0, "h"_a = 0, "context"_a = py::none(), py::kw_only(), "causal"_a = false,
          "key_lengths"_a = py::none(), "copy"_a = false,
          R"doc(weights(x, b=0, h=0, context=None, *, causal=False, key_lengths=None, copy=False)

Attention probabilities [n, m] (rows = queries) of batch b, head h, as the backend computes
them (PyTorch's per-head attn_output_weights).)doc")
      .def_property_readonly(
          "d_model", [](const PyMha& l) { return l.impl->config().d_model; }, "Model width (embed_dim).")
      .def_property_readonly(
          "heads", [](const PyMha& l) { return l.impl->config().heads; }, "Number of attention heads.")
      .def_property_readonly(
          "backend", [](const PyMha& l) { return l.impl->backend().spec(); },
          "Canonical spec string of the backend computing the attention.")
      .def("__repr__", [](const PyMha& l) {
        return "attnkit.MultiheadAttention(d_model=" + std::to_string(l.impl->config().d_model) +
               ", heads=" + std::to_string(l.impl->config().heads) + ", backend='" + l.impl->backend().spec() + "')";
      });
}

}  // namespace attnkit::python
