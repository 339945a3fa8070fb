#pragma once
// Pieces of the Python module `attnkit` shared between its source files.
#include <pybind11/pybind11.h>

#include <memory>

#include "attnkit/backend.hpp"

namespace attnkit::python {

namespace py = pybind11;

// attnkit.Backend: an immutable backend shared by every Python reference (forward is thread-safe).
struct PyBackend {
  std::shared_ptr<const Backend> impl;
};

// attention, Backend, backends, reference, metrics, Error, __version__ (module.cpp).
void bind_core(py::module_& m);
// MultiheadAttention (mha.cpp; only when the layer family is built).
void bind_mha(py::module_& m);
// Decoder (decode.cpp; only when the decode family is built).
void bind_decode(py::module_& m);

}  // namespace attnkit::python
