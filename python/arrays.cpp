#include "arrays.hpp"

#include <omp.h>

#include <climits>
#include <string>

#include "attnkit/error.hpp"

namespace attnkit::python {

namespace {

constexpr const char* kCopyHint = " (pass copy=True to let attnkit copy and convert it)";

std::string type_name(py::handle obj) { return py::str(py::type::handle_of(obj).attr("__name__")); }

}  // namespace

py::array converted(py::handle obj, const std::string& name) {
  const py::module_ np = py::module_::import("numpy");
  const py::array a = np.attr("asarray")(obj);
  // numpy would cast complex to float32 by dropping the imaginary part (with only a warning).
  const char kind = a.dtype().kind();
  if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f')
    throw py::type_error(name + ": dtype " + std::string(py::str(a.dtype())) +
                         "; expected real numbers (copy=True converts bool, integer and floating-point data to "
                         "float32, not complex numbers, strings or objects)");
  return np.attr("require")(a, py::dtype::of<float>(), py::make_tuple("C", "A"));
}

py::object torch_numpy(py::handle t, const std::string& name, bool copy) {
  const std::string device = py::str(t.attr("device").attr("type"));
  if (device != "cpu")
    throw py::type_error(name + ": a torch tensor on '" + device +
                         "'; expected a CPU tensor (attnkit computes on the CPU; move it with .cpu())");
  // bfloat16 has no numpy dtype: with copy=True it goes through torch's own float32 conversion.
  if (copy && std::string(py::str(t.attr("dtype"))) == "torch.bfloat16")
    return t.attr("detach")().attr("float")().attr("numpy")();
  try {
    return t.attr("detach")().attr("numpy")();
  } catch (py::error_already_set& e) {
    throw py::type_error(name + ": torch tensor cannot be seen as a numpy array: " + e.what());
  }
}

namespace {

// Fills a.shape / a.stride from a.array; returns an empty string when the layout is usable as is,
// else why not.
std::string layout(ArrayArg& a, const char* name) {
  const py::array& arr = a.array;
  const int r = a.rank;
  if (arr.size() == 0) {  // nothing to read: Problem::validate names the empty axis
    for (int i = 0; i < r; ++i) a.shape[4 - r + i] = arr.shape(i);
    return {};
  }
  if (reinterpret_cast<uintptr_t>(arr.data()) % sizeof(float) != 0)
    return std::string(name) + ": data not aligned to 4 bytes; expected an aligned float32 array";
  for (int i = 0; i < r; ++i) {
    const int axis = 4 - r + i;
    const int64_t n = arr.shape(i);
    const int64_t s = arr.strides(i);
    a.shape[axis] = n;
    if (n <= 1) {  // the stride of a size-1 (or empty) axis is never used
      a.stride[axis] = axis == 3 ? 1 : 0;
      continue;
    }
    if (s < 0 || s % static_cast<int64_t>(sizeof(float)) != 0)
      return std::string(name) + ": stride " + std::to_string(s) + " bytes on axis " + std::to_string(i) +
             "; expected a non-negative multiple of 4 bytes";
    a.stride[axis] = s / static_cast<int64_t>(sizeof(float));
    if (axis == 3 && s != static_cast<int64_t>(sizeof(float)))
      return std::string(name) + ": last-axis stride " + std::to_string(s) +
             " bytes; expected 4 (rows must be contiguous float32)";
  }
  return {};
}

}  // namespace

bool is_torch_tensor(py::handle obj) {
  PyObject* torch = PyDict_GetItemString(PyImport_GetModuleDict(), "torch");  // borrowed
  if (torch == nullptr) return false;
  PyObject* tensor_type = PyObject_GetAttrString(torch, "Tensor");
  if (tensor_type == nullptr) {
    PyErr_Clear();
    return false;
  }
  const int is = PyObject_IsInstance(obj.ptr(), tensor_type);
  Py_DECREF(tensor_type);
  if (is < 0) throw py::error_already_set();
  return is == 1;
}

ArrayArg as_array(py::handle obj, const char* name, bool copy, bool writable) {
  const bool may_copy = copy && !writable;
  ArrayArg a;
  py::object o = py::reinterpret_borrow<py::object>(obj);
  if (!py::isinstance<py::array>(o)) {
    if (obj.is_none())
      throw py::type_error(std::string(name) + ": None; expected a float32 numpy array or torch CPU tensor");
    if (is_torch_tensor(obj)) {
      a.torch = true;
      o = torch_numpy(obj, name, may_copy);
    } else if (may_copy) {
      o = converted(obj, name);
    } else {
      throw py::type_error(std::string(name) + ": " + type_name(obj) +
                           "; expected a float32 numpy array or torch CPU tensor" + (writable ? "" : kCopyHint));
    }
  }
  a.array = py::reinterpret_borrow<py::array>(o);
  if (!py::array_t<float>::check_(a.array)) {
    if (!may_copy)
      throw py::type_error(std::string(name) + ": dtype " + std::string(py::str(a.array.dtype())) +
                           "; expected float32" + (writable ? "" : kCopyHint));
    a.array = converted(a.array, name);
  }
  a.rank = static_cast<int>(a.array.ndim());
  if (a.rank < 2 || a.rank > 4)
    throw py::value_error(std::string(name) + ": rank " + std::to_string(a.rank) + " (shape " +
                          std::string(py::str(a.array.attr("shape"))) + "); expected [B,H,N,D], [H,N,D] or [N,D]");
  std::string why = layout(a, name);
  if (!why.empty() && may_copy) {
    a.array = converted(a.array, name);
    why = layout(a, name);
  }
  if (!why.empty()) throw py::value_error(why + (writable ? "" : kCopyHint));
  if (writable && !a.array.writeable())
    throw py::value_error(std::string(name) + ": read-only array; expected a writeable output buffer");
  return a;
}

py::object to_caller(py::array a, bool torch) {
  if (!torch) return a;
  return py::module_::import("torch").attr("from_numpy")(a);
}

py::array_t<float> new_output(const std::array<int64_t, 4>& shape4, int rank) {
  std::vector<py::ssize_t> shape(shape4.begin() + (4 - rank), shape4.end());
  return py::array_t<float>(shape);
}

std::vector<int32_t> key_lengths_arg(py::handle obj, int64_t batch) {
  std::vector<int32_t> out;
  if (obj.is_none()) return out;
  py::object seq = py::reinterpret_borrow<py::object>(obj);
  if (is_torch_tensor(obj)) seq = torch_numpy(obj, "key_lengths", false);
  if (py::isinstance<py::array>(seq)) {
    const py::array arr = py::reinterpret_borrow<py::array>(seq);
    const char kind = arr.dtype().kind();
    if (kind != 'i' && kind != 'u')
      throw py::type_error("key_lengths: dtype " + std::string(py::str(arr.dtype())) + "; expected integers");
    if (arr.ndim() != 1)
      throw py::value_error("key_lengths: rank " + std::to_string(arr.ndim()) + "; expected 1 ([B])");
    seq = arr.attr("tolist")();
  }
  if (!py::isinstance<py::sequence>(seq) || py::isinstance<py::str>(seq))
    throw py::type_error("key_lengths: " + type_name(obj) + "; expected a sequence of ints or a 1-D integer array");
  size_t i = 0;
  for (py::handle item : seq) {
    PyObject* index = PyNumber_Index(item.ptr());  // ints and numpy integers; not floats
    if (index == nullptr) {
      PyErr_Clear();
      throw py::type_error("key_lengths[" + std::to_string(i) + "]: " + type_name(item) + "; expected an integer");
    }
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(index, &overflow);
    Py_DECREF(index);
    if (overflow != 0 || v < INT32_MIN || v > INT32_MAX)
      throw py::value_error("key_lengths[" + std::to_string(i) + "]: " + std::string(py::str(item)) +
                            "; expected a value in [0, n_k]");
    out.push_back(static_cast<int32_t>(v));
    ++i;
  }
  // An empty list would reach the library as "no key_lengths" (the Mask's default): a given list
  // must have one entry per batch entry (None means no padding).
  if (out.empty() && batch >= 1)
    throw Error("key_lengths: 0 entries; expected " + std::to_string(batch) +
                " (one per batch; None for no padding)");
  return out;
}

std::optional<float> scale_arg(const std::optional<double>& scale) {
  if (!scale) return std::nullopt;
  return static_cast<float>(*scale);
}

ThreadCount::ThreadCount(const std::optional<int>& threads) {
  // The CLI's --threads range: far more threads than that exhausts the stack GOMP starts a team
  // from (100000 crashed the interpreter) or the thread limit (libgomp then exits the process).
  if (!threads) {
    if (omp_get_max_threads() > kMaxThreads)  // from OMP_NUM_THREADS
      throw py::value_error("threads: None keeps OpenMP's count " + std::to_string(omp_get_max_threads()) +
                            " (OMP_NUM_THREADS); expected at most " + std::to_string(kMaxThreads) +
                            ": pass threads= or set OMP_NUM_THREADS lower");
    return;
  }
  if (*threads < 1 || *threads > kMaxThreads)
    throw py::value_error("threads: " + std::to_string(*threads) + "; expected 1.." + std::to_string(kMaxThreads) +
                          " (or None)");
  saved_ = omp_get_max_threads();
  omp_set_num_threads(*threads);
  set_ = true;
}

ThreadCount::~ThreadCount() {
  if (set_) omp_set_num_threads(saved_);
}

}  // namespace attnkit::python
