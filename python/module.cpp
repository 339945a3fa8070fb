// The Python module `attnkit`: attention, Backend, backends, reference, metrics (and
// MultiheadAttention, in mha.cpp; Decoder, in decode.cpp). Every computation runs with the GIL
// released, on the caller's memory (arrays.hpp says what is accepted without a copy).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "arrays.hpp"
#include "attnkit/error.hpp"
#include "attnkit/metrics.hpp"
#include "attnkit/registry.hpp"
#include "attnkit_config.hpp"
#include "module.hpp"
#include "problem_args.hpp"

namespace attnkit::python {

namespace {

using namespace pybind11::literals;

py::dict capabilities_dict(const Capabilities& c) {
  return py::dict("causal"_a = c.causal, "key_lengths"_a = c.key_lengths, "cross"_a = c.cross, "gqa"_a = c.gqa,
                  "weights"_a = c.weights, "causal_future_independent"_a = c.causal_future_independent);
}

// A parameter's default as the Python value of its type ("" -> None for an optional string).
py::object typed_default(const ParamDef& d) {
  switch (d.type) {
    case ParamType::Int: return py::int_(std::stoll(d.default_value));
    case ParamType::Float: return py::float_(std::stod(d.default_value));
    case ParamType::Bool: return py::bool_(d.default_value == "1" || d.default_value == "true");
    case ParamType::String: return d.default_value.empty() ? py::object(py::none()) : py::object(py::str(d.default_value));
  }
  return py::none();
}

const char* type_text(ParamType t) {
  switch (t) {
    case ParamType::Int: return "int";
    case ParamType::Float: return "float";
    case ParamType::Bool: return "bool";
    case ParamType::String: return "str";
  }
  return "?";
}

// Per-row values (rows indexed (b * heads + h) * n_q + i) as an array of q's leading shape.
py::object rows_array(const std::vector<double>& rows, const ArrayArg& q) {
  std::vector<py::ssize_t> shape;
  for (int axis = 4 - q.rank; axis < 3; ++axis) shape.push_back(q.shape[axis]);
  py::array_t<double> a(shape);
  if (!rows.empty()) std::memcpy(a.mutable_data(), rows.data(), rows.size() * sizeof(double));
  return to_caller(a, q.torch);
}

py::object run(const Backend& b, py::handle q, py::handle k, py::handle v, py::handle out, bool causal,
               py::handle key_lengths, const std::optional<double>& scale, const std::optional<int>& threads,
               bool copy) {
  ProblemArgs a = problem_args(q, k, v, out, causal, key_lengths, scale, copy);
  ThreadCount count(threads);
  {
    py::gil_scoped_release nogil;
    b.forward(a.problem);
  }
  return a.result;
}

std::shared_ptr<const Backend> backend_arg(py::handle backend) {
  if (py::isinstance<PyBackend>(backend)) return backend.cast<const PyBackend&>().impl;
  if (py::isinstance<py::str>(backend)) return make_backend(backend.cast<std::string>());
  throw py::type_error("backend: " + std::string(py::str(py::type::handle_of(backend).attr("__name__"))) +
                       "; expected a spec string such as \"exact\" or an attnkit.Backend");
}

constexpr const char* kModuleDoc = R"doc(attnkit: exact attention and its fast approximations on the CPU, behind one interface.

Arrays are float32 numpy arrays or torch CPU tensors of shape [B, H, N, D], [H, N, D] or
[N, D] (q: [B, H, n_q, d], k: [B, H_kv, n_k, d], v: [B, H_kv, n_k, d_v]; H_kv divides H).
Any strides whose last axis is contiguous are used in place, without a copy (e.g. a
[B, N, H, D] projection output viewed as [B, H, N, D] by .transpose(0, 2, 1, 3)).
Other dtypes or layouts are refused (TypeError for the type or dtype, ValueError for the
rank or layout) unless copy=True is passed, which converts real data (bool, integers, floats,
torch bfloat16) to float32; complex data raises TypeError even then. Results come back as the
type q was given in.
Errors the library finds (a bad shape, an unknown spec, a mask a backend cannot honour)
raise attnkit.Error, a subclass of ValueError, whose message names the argument.
Computations release the GIL: several Python threads may compute at once.
The OpenMP thread count is OMP_NUM_THREADS (or the number of cores) unless threads= is given.
)doc";

constexpr const char* kAttentionDoc = R"doc(attention(q, k, v, backend="exact", *, causal=False, key_lengths=None, scale=None, threads=None, out=None, copy=False)

Attention softmax(scale * q k^T + mask) v, computed by `backend`.

q: [B, H, n_q, d], k: [B, H_kv, n_k, d], v: [B, H_kv, n_k, d_v] (or rank 3 / 2 without the
leading axes), float32, any strides with a unit last stride (used without a copy).
backend: a spec string ("exact", "local:window=256", ...; see backends()) or an
attnkit.Backend (faster for repeated calls: a spec string builds the backend each call).
causal: bottom-right aligned causal mask (query i sees key j iff j <= i + n_k - n_q).
key_lengths: B ints (None: no padding); keys j >= key_lengths[b] are padding.
scale: softmax temperature; None means 1/sqrt(d).
threads: OpenMP threads for this call, 1..4096; None keeps the current count.
out: optional float32 [B, H, n_q, d_v] buffer (any unit-last-stride layout) written in place
and returned.
copy: allow converting other real dtypes (bool, integers, float16/float64, torch bfloat16) to
float32 and other layouts to C order (otherwise TypeError / ValueError); complex input raises
TypeError even then (the conversion would drop the imaginary part).
Returns [B, H, n_q, d_v] float32 of q's rank, as a numpy array or a torch tensor like q.
Raises attnkit.Error (ValueError) naming the bad argument. Releases the GIL.)doc";

}  // namespace

void bind_core(py::module_& m) {
  m.doc() = kModuleDoc;
  m.attr("__version__") = ATTNKIT_PY_VERSION;
  py::register_exception<Error>(m, "Error", PyExc_ValueError);
  m.attr("Error").attr("__doc__") =
      "Raised for every bad argument or unsupported request the attnkit library finds; a subclass of "
      "ValueError. The message names the argument, the value seen and the value expected.";

  py::class_<PyBackend>(m, "Backend", R"doc(Backend(spec)

One attention backend, made from a spec string name[:key=value,...] such as "exact",
"local:window=256" or "performer:features=128,seed=1" (see attnkit.backends() for the
names, parameters and defaults of this build). Immutable; one object may be used from
many Python threads at once (forward releases the GIL). Raises attnkit.Error for an
unknown name or parameter, a bad value, or a family that was not built.)doc")
      .def(py::init([](const std::string& spec) { return PyBackend{make_backend(spec)}; }), "spec"_a,
           "__init__(spec)\n\nMakes the backend named by a spec string (see attnkit.Backend).")
      .def_property_readonly(
          "spec", [](const PyBackend& b) { return b.impl->spec(); },
          "Canonical spec string with every default filled in; attnkit.Backend(b.spec) recreates b.")
      .def_property_readonly(
          "capabilities", [](const PyBackend& b) { return capabilities_dict(b.impl->capabilities()); },
          "What the backend can honour: dict of bools causal, key_lengths, cross (n_q != n_k), gqa (H_kv < H), "
          "weights (weights() gives its probability matrix) and causal_future_independent (with causal=True, "
          "keys a row cannot see change nothing in its output; False for lsh, whose choice of visible keys "
          "depends on all keys).")
      .def(
          "forward",
          [](const PyBackend& b, py::handle q, py::handle k, py::handle v, py::handle out, bool causal,
             py::handle key_lengths, std::optional<double> scale, std::optional<int> threads, bool copy) {
            return run(*b.impl, q, k, v, out, causal, key_lengths, scale, threads, copy);
          },
          "q"_a, "k"_a, "v"_a, "out"_a = py::none(), py::kw_only(), "causal"_a = false, "key_lengths"_a = py::none(),
          "scale"_a = py::none(), "threads"_a = py::none(), "copy"_a = false,
          R"doc(forward(q, k, v, out=None, *, causal=False, key_lengths=None, scale=None, threads=None, copy=False)

This backend's attention output; arguments as attnkit.attention. out, when given, is
written in place and returned. Releases the GIL.)doc")
      .def(
          "error_bound",
          [](const PyBackend& b, py::handle q, py::handle k, py::handle v, bool causal, py::handle key_lengths,
             std::optional<double> scale, bool copy) -> py::object {
            const ThreadCount omp_in_range(std::nullopt);  // OMP_NUM_THREADS within 1..4096
            ProblemArgs a = problem_args_scratch(q, k, v, causal, key_lengths, scale, copy);
            std::optional<ErrorBound> eb;
            {
              py::gil_scoped_release nogil;
              eb = b.impl->error_bound(a.problem);
            }
            if (!eb) return py::none();
            return py::dict("description"_a = eb->description, "out_l2"_a = rows_array(eb->out_l2, a.q),
                            "prob_l1"_a = eb->prob_l1.empty() ? py::object(py::none()) : rows_array(eb->prob_l1, a.q));
          },
          "q"_a, "k"_a, "v"_a, py::kw_only(), "causal"_a = false, "key_lengths"_a = py::none(), "scale"_a = py::none(),
          "copy"_a = false,
          R"doc(error_bound(q, k, v, *, causal=False, key_lengths=None, scale=None, copy=False)

The a-posteriori bound theory gives for this problem, or None where it gives none:
dict(description=str, out_l2=per-row bound on ||approx_i - exact_i||_2,
prob_l1=per-row bound on the L1 distance of the probability rows or None).
Per-row arrays are float64 of q's leading shape [B, H, n_q] (rank 3: [H, n_q], rank 2: [n_q]).)doc")
      .def(
          "weights",
          [](const PyBackend& b, py::handle q, py::handle k, py::handle v, int64_t batch, int64_t head, bool causal,
             py::handle key_lengths, std::optional<double> scale, bool copy) -> py::object {
            const ThreadCount omp_in_range(std::nullopt);  // OMP_NUM_THREADS within 1..4096
            ProblemArgs a = problem_args_scratch(q, k, v, causal, key_lengths, scale, copy);
            const int64_t n_q = a.q.shape[2], n_k = a.k.shape[2];
            if (n_q * n_k > Backend::kMaxWeights)
              throw Error("q/k: n_q x n_k = " + std::to_string(n_q) + " x " + std::to_string(n_k) +
                          " weights; expected at most " + std::to_string(Backend::kMaxWeights) + " (8192 x 8192)");
            py::array_t<float> w({static_cast<py::ssize_t>(n_q), static_cast<py::ssize_t>(n_k)});
            float* wp = w.mutable_data();
            {
              py::gil_scoped_release nogil;
              b.impl->weights(a.problem, batch, head, wp);
            }
            return to_caller(w, a.q.torch);
          },
          "q"_a, "k"_a, "v"_a, "b"_a = 0, "h"_a = 0, py::kw_only(), "causal"_a = false, "key_lengths"_a = py::none(),
          "scale"_a = py::none(), "copy"_a = false,
          R"doc(weights(q, k, v, b=0, h=0, *, causal=False, key_lengths=None, scale=None, copy=False)

Probability matrix [n_q, n_k] (float32, rows = queries) of batch b, head h as this backend
computes it (exact, or implied by the approximation); rows sum to 1, fully masked rows are 0.
Only for backends with capabilities["weights"]; at most 8192 x 8192 entries.)doc")
      .def(
          "cost",
          [](const PyBackend& b, int64_t n_q, std::optional<int64_t> n_k, int64_t d, std::optional<int64_t> d_v,
             int64_t batch, int64_t heads, std::optional<int64_t> kv_heads, bool causal) {
            Shape s;
            s.batch = batch;
            s.heads = heads;
            s.kv_heads = kv_heads.value_or(heads);
            s.n_q = n_q;
            s.n_k = n_k.value_or(n_q);
            s.d = d;
            s.d_v = d_v.value_or(d);
            s.causal = causal;
            const std::pair<const char*, int64_t> sizes[] = {{"n_q", s.n_q},     {"n_k", s.n_k},
                                                             {"d", s.d},         {"d_v", s.d_v},
                                                             {"batch", s.batch}, {"heads", s.heads},
                                                             {"kv_heads", s.kv_heads}};
            for (const auto& [name, value] : sizes)
              if (value < 1) detail::fail(name, ": ", value, "; expected >= 1");
            if (s.heads % s.kv_heads != 0)
              detail::fail("kv_heads: ", s.kv_heads, "; expected a divisor of heads = ", s.heads);
            // Sizes a problem could have: every tensor's element count within int64 (as
            // Problem::validate requires), so no backend's count wraps.
            const double limit = 0x1p62;
            const double rows_q = static_cast<double>(s.batch) * s.heads * s.n_q,
                         rows_k = static_cast<double>(s.batch) * s.kv_heads * s.n_k;
            if (rows_q * std::max(s.d, s.d_v) > limit || rows_k * std::max(s.d, s.d_v) > limit)
              detail::fail("cost: batch x heads x n x d = ", std::max(rows_q, rows_k) * std::max(s.d, s.d_v),
                           " elements; expected at most 2^62 (a problem that fits in memory)");
            Cost c;
            {
              py::gil_scoped_release nogil;  // local and pruned count per row / tile: O(n) for huge n
              c = b.impl->cost(s);
            }
            return py::dict("flops"_a = c.flops, "bytes"_a = c.bytes);
          },
          "n_q"_a, "n_k"_a = py::none(), "d"_a = 64, "d_v"_a = py::none(), "batch"_a = 1, "heads"_a = 1,
          "kv_heads"_a = py::none(), "causal"_a = false,
          R"doc(cost(n_q, n_k=None, d=64, d_v=None, batch=1, heads=1, kv_heads=None, causal=False)

Work of one forward call of this shape (no data needed): dict(flops=floating point
operations executed, bytes=bytes moved to and from memory at least once).
n_k defaults to n_q, d_v to d, kv_heads to heads.)doc")
      .def("__repr__", [](const PyBackend& b) { return "attnkit.Backend('" + b.impl->spec() + "')"; });

  m.def(
      "attention",
      [](py::handle q, py::handle k, py::handle v, py::handle backend, bool causal, py::handle key_lengths,
         std::optional<double> scale, std::optional<int> threads, py::handle out, bool copy) {
        const std::shared_ptr<const Backend> b = backend_arg(backend);
        return run(*b, q, k, v, out, causal, key_lengths, scale, threads, copy);
      },
      "q"_a, "k"_a, "v"_a, "backend"_a = "exact", py::kw_only(), "causal"_a = false, "key_lengths"_a = py::none(),
      "scale"_a = py::none(), "threads"_a = py::none(), "out"_a = py::none(), "copy"_a = false, kAttentionDoc);

  m.def(
      "reference",
      [](py::handle q, py::handle k, py::handle v, bool causal, py::handle key_lengths, std::optional<double> scale,
         std::optional<int> threads, py::handle out, bool copy) {
        static const std::shared_ptr<const Backend> ref = make_backend("reference");
        return run(*ref, q, k, v, out, causal, key_lengths, scale, threads, copy);
      },
      "q"_a, "k"_a, "v"_a, py::kw_only(), "causal"_a = false, "key_lengths"_a = py::none(), "scale"_a = py::none(),
      "threads"_a = py::none(), "out"_a = py::none(), "copy"_a = false,
      R"doc(reference(q, k, v, *, causal=False, key_lengths=None, scale=None, threads=None, out=None, copy=False)

The oracle: attention accumulated in float64, one score row at a time (slow on purpose),
rounded to float32 at the end. Arguments and result as attnkit.attention.)doc");

  m.def(
      "metrics",
      [](py::handle approx, py::handle exact) {
        const ArrayArg a = as_array(approx, "approx", false);
        const ArrayArg r = as_array(exact, "exact", false);
        ErrorMetrics em;
        {
          py::gil_scoped_release nogil;
          em = compare(a.cview(), r.cview());
        }
        return py::dict("max_abs"_a = em.max_abs, "rel_fro"_a = em.rel_fro, "mean_row_l2"_a = em.mean_row_l2);
      },
      "approx"_a, "exact"_a,
      R"doc(metrics(approx, exact)

Error of `approx` against `exact` (same shape, float32, unit last stride): dict(
max_abs = max |a - r|, rel_fro = ||a - r||_F / ||r||_F (0 when both are 0),
mean_row_l2 = mean over rows of ||a_i - r_i||_2). NaN anywhere makes max_abs and rel_fro NaN.)doc");

  m.def(
      "backends",
      []() {
        py::list out;
        for (const BackendInfo& info : list_backends()) {
          py::list params;
          for (const ParamDef& d : info.params) {
            py::dict p("name"_a = d.name, "type"_a = type_text(d.type), "default"_a = typed_default(d),
                       "help"_a = d.help);
            if (d.type == ParamType::Int || d.type == ParamType::Float) {
              p["min"] = d.min;
              p["max"] = d.max;
            }
            params.append(p);
          }
          out.append(py::dict("name"_a = info.name, "summary"_a = info.summary, "params"_a = params,
                              "capabilities"_a = capabilities_dict(info.caps)));
        }
        return out;
      },
      R"doc(backends()

Every backend of this build, in a stable order: a list of dicts with name, summary,
capabilities (with default parameters) and params (each: name, type "int"/"float"/"bool"/"str",
default, help, and min/max for numbers). attnkit.Backend(name) uses every default.)doc");
}

}  // namespace attnkit::python

PYBIND11_MODULE(attnkit, m) {
  // Every docstring starts with its Python signature; pybind11's own (with C++ types) would repeat it.
  pybind11::options options;
  options.disable_function_signatures();
  attnkit::python::bind_core(m);
#if ATTNKIT_HAS_LAYER
  attnkit::python::bind_mha(m);
#endif
#if ATTNKIT_HAS_DECODE
  attnkit::python::bind_decode(m);
#endif
}
