#pragma once
// Python objects (numpy arrays, torch CPU tensors) seen as attnkit views, without copies.
//
// The rule of the module: an input is used where it lies. A float32 array (or torch CPU tensor,
// through its .numpy() view, which shares the storage) of rank 2, 3 or 4 whose last axis has unit
// stride and whose other strides are non-negative multiples of 4 bytes becomes a View over the
// same memory. Anything else is refused — TypeError for a wrong type or dtype, ValueError for a
// wrong rank or layout, both naming the argument — unless the caller passed copy=True, which
// converts real data (bool, integers, floats; torch bfloat16 through .float()) with
// numpy.require(..., float32, ['C', 'A']); complex data is refused even then (TypeError), since
// the conversion would drop its imaginary part. Nothing is converted silently.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "attnkit/limits.hpp"
#include "attnkit/problem.hpp"

namespace attnkit::python {

namespace py = pybind11;

// One array argument, padded to 4-D the way the CLI pads .npy files ([N,D] -> [1,1,N,D]).
struct ArrayArg {
  py::array array;  // owns a reference to the memory (a torch tensor's .numpy() view shares it)
  int rank = 0;     // as given: 2, 3 or 4
  bool torch = false;  // given as a torch tensor: results go back as torch tensors
  std::array<int64_t, 4> shape{1, 1, 1, 1};
  std::array<int64_t, 4> stride{0, 0, 0, 1};  // elements

  ConstView cview() const { return ConstView{static_cast<const float*>(array.data()), shape, stride}; }
  MutView mview() { return MutView{static_cast<float*>(array.mutable_data()), shape, stride}; }
};

// True when `obj` is a torch.Tensor (only checked when torch is already imported: an object cannot
// be a tensor otherwise).
bool is_torch_tensor(py::handle obj);

// `obj` as a float32 view of rank 2..4 (see the top of this file). `writable`: the argument is an
// output buffer (must be writeable; copy never applies to it).
ArrayArg as_array(py::handle obj, const char* name, bool copy, bool writable = false);

// A result array handed back in the caller's type: torch.from_numpy(a) (sharing memory) when
// `torch`, else `a` itself.
py::object to_caller(py::array a, bool torch);

// New C-order array of the last `rank` of the four dims in `shape4` (the output of a q of that rank).
py::array_t<float> new_output(const std::array<int64_t, 4>& shape4, int rank);

// The copy that copy=True makes of `obj`: float32, C order, aligned. Raises TypeError naming `name`
// for data that is not real numbers (complex, strings, objects): numpy would drop the imaginary part.
py::array converted(py::handle obj, const std::string& name);

// A torch CPU tensor's .numpy() view (shares the storage; detach() drops autograd, never copies);
// with `copy`, a bfloat16 tensor (no numpy dtype) becomes a float32 copy. TypeError naming `name`
// for another device or a dtype numpy cannot see.
py::object torch_numpy(py::handle t, const std::string& name, bool copy);

// key_lengths: None, a sequence of ints, or a 1-D integer array / tensor. Raises TypeError for
// non-integers, ValueError for a wrong rank or a value outside int32, attnkit.Error for an empty
// one when `batch` >= 1 (the library, which takes empty for "none", checks the range [0, n_k] and
// any other count).
std::vector<int32_t> key_lengths_arg(py::handle obj, int64_t batch);

// scale: None or a number (float32, as the CLI's --scale).
std::optional<float> scale_arg(const std::optional<double>& scale);

// Sets the OpenMP thread count of the calling thread for one call (the scope of this object) and
// restores it after. threads must be in 1..kMaxThreads (ValueError otherwise); nullopt leaves the count alone.
// OpenMP keeps the count per calling thread, so concurrent Python threads do not disturb each other.
class ThreadCount {
 public:
  explicit ThreadCount(const std::optional<int>& threads);
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;
  ~ThreadCount();

 private:
  int saved_ = 0;
  bool set_ = false;
};

}  // namespace attnkit::python
