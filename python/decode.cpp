// attnkit.Decoder: attnkit::Decoder (include/attnkit/decode.hpp) for numpy / torch callers: a KV
// cache (or ring, page bounds, recurrent state) filled by append(k, v) and read by attend(q).
// Arrays follow the module's rule (arrays.hpp): float32, unit last stride, used in place; anything
// else refused unless copy=True.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "arrays.hpp"
#include "attnkit/decode.hpp"
#include "attnkit/error.hpp"
#include "module.hpp"

namespace attnkit::python {

namespace {

using namespace pybind11::literals;

// A Decoder is not thread-safe (decode.hpp), and its calls release the GIL: `busy` (read and
// written only with the GIL held) turns a second thread's call during a running one into a
// RuntimeError instead of a data race on the cache.
struct PyDecoder {
  Decoder impl;
  bool busy = false;
};

void check_idle(const PyDecoder& d) {
  if (d.busy)
    throw std::runtime_error(
        "Decoder: in use by another thread; expected one call at a time (a Decoder is not thread-safe: "
        "use one per thread or serialize the calls)");
}

// Marks the decoder busy for one call (constructed and destroyed with the GIL held).
class Busy {
 public:
  explicit Busy(PyDecoder& d) : d_(d) {
    check_idle(d);
    d_.busy = true;
  }
  Busy(const Busy&) = delete;
  Busy& operator=(const Busy&) = delete;
  ~Busy() { d_.busy = false; }

 private:
  PyDecoder& d_;
};

std::unique_ptr<PyDecoder> make_decoder(const std::string& spec, int64_t batch, int64_t heads, int64_t kv_heads,
                                        int64_t capacity, int64_t d, std::optional<int64_t> d_v,
                                        const std::string& storage, int64_t max_step, py::handle key_lengths,
                                        std::optional<double> scale) {
  DecodeConfig cfg;
  cfg.batch = batch;
  cfg.heads = heads;
  cfg.kv_heads = kv_heads;
  cfg.capacity = capacity;
  cfg.d = d;
  cfg.d_v = d_v.value_or(d);
  cfg.storage = parse_kv_storage(storage);  // attnkit.Error naming `storage` for an unknown name
  cfg.max_step = max_step;
  cfg.key_lengths = key_lengths_arg(key_lengths, batch);
  cfg.scale = scale_arg(scale);
  return std::make_unique<PyDecoder>(PyDecoder{Decoder(spec, cfg)});
}

void append(PyDecoder& dec, py::handle k, py::handle v, bool copy) {
  const ThreadCount omp_in_range(std::nullopt);  // OMP_NUM_THREADS within 1..4096
  const ArrayArg ka = as_array(k, "k", copy);
  const ArrayArg va = as_array(v, "v", copy);
  Busy busy(dec);
  py::gil_scoped_release nogil;
  dec.impl.append(ka.cview(), va.cview());
}

py::object attend(PyDecoder& dec, py::handle q, py::handle out, std::optional<int> threads, bool copy) {
  const ArrayArg qa = as_array(q, "q", copy);
  ArrayArg oa;
  py::object result;
  if (out.is_none()) {
    const std::array<int64_t, 4> shape{qa.shape[0], qa.shape[1], qa.shape[2], dec.impl.config().d_v};
    py::array_t<float> o = new_output(shape, qa.rank);
    oa = as_array(o, "out", false, true);
    result = to_caller(o, qa.torch);
  } else {
    oa = as_array(out, "out", false, true);
    result = py::reinterpret_borrow<py::object>(out);
  }
  ThreadCount count(threads);
  Busy busy(dec);
  {
    py::gil_scoped_release nogil;
    dec.impl.attend(qa.cview(), oa.mview());
  }
  return result;
}

py::dict config_dict(const DecodeConfig& c) {
  return py::dict("batch"_a = c.batch, "heads"_a = c.heads, "kv_heads"_a = c.kv_heads, "capacity"_a = c.capacity,
                  "d"_a = c.d, "d_v"_a = c.d_v, "storage"_a = kv_storage_name(c.storage), "max_step"_a = c.max_step,
                  "key_lengths"_a = c.key_lengths.empty() ? py::object(py::none()) : py::cast(c.key_lengths),
                  "scale"_a = c.scale ? py::object(py::float_(*c.scale)) : py::object(py::none()));
}

std::string repr(const PyDecoder& dec) {
  const DecodeConfig& c = dec.impl.config();
  std::ostringstream s;
  s << "<attnkit.Decoder '" << dec.impl.spec() << "' batch=" << c.batch << " heads=" << c.heads
    << " kv_heads=" << c.kv_heads << " capacity=" << c.capacity << " d=" << c.d << " d_v=" << c.d_v
    << " storage=" << kv_storage_name(c.storage) << " max_step=" << c.max_step;
  if (c.scale) s << " scale=" << *c.scale;
  if (!c.key_lengths.empty()) {
    s << " key_lengths=[";
    for (size_t i = 0; i < c.key_lengths.size(); ++i) s << (i ? ", " : "") << c.key_lengths[i];
    s << "]";
  }
  if (!dec.busy) s << " size=" << dec.impl.size();
  s << ">";
  return s.str();
}

constexpr const char* kDecoderDoc = R"doc(Decoder(spec, *, batch=1, heads=1, kv_heads=1, capacity=4096, d=64, d_v=None, storage="f32", max_step=1, key_lengths=None, scale=None)

Decoding: attention of a few new tokens over the keys and values of the past ones, used like
an inference engine: append the new tokens' keys and values, then attend their queries.

    dec = attnkit.Decoder("exact", batch=1, heads=8, kv_heads=2, capacity=4096, d=64)
    dec.append(k_prompt, v_prompt)          # [B, H_kv, n, d], [B, H_kv, n, d_v]
    for ...:
        y = dec.step(q1, k1, v1)            # [B, H, 1, d] -> [B, H, 1, d_v]

attend(q) decodes the last t appended positions with causal semantics (the query of position
P sees positions <= P, and < key_lengths[b] when given), so decoding the last positions of a
sequence one token at a time equals Backend("exact").forward(q, k, v, causal=True) there.
GQA: query head h reads kv head h // (heads // kv_heads).

spec: "exact" (every cached position, split-K over the threads), "local:window=256" (a ring
of window + max_step - 1 positions), "pages:page=16,keep=1024" (Quest: exact attention over the
best ceil(keep/page) pages by a key-bound score, plus the newest pages), "performer[:...]",
"linear[:...]" (the kernelized recurrent state; storage must be "f32"); see
include/attnkit/decode.hpp.
batch, heads, kv_heads, d: sizes (heads a multiple of kv_heads). d_v: value width; None
means d. capacity: positions the cache holds (exact, pages; local, performer and linear
ignore it). max_step: the largest t one attend may decode (local, performer, linear; exact and
pages accept any t <= size). storage: "f32", "bf16" or "int8" (per-row scales; error vs fp64
about 1e-2 on gaussian input). key_lengths: B ints (None: no padding); positions >=
key_lengths[b] are padding; values in [0, capacity] for exact and pages, >= 0 for the others.
scale: softmax temperature; None means 1/sqrt(d). Defaults are those of the C++ DecodeConfig
(there d_v defaults to 64 = d's default; here it follows d).

Arrays are float32 numpy arrays or torch CPU tensors with a unit last stride, used in place
(rank 3 / 2 inputs are padded with leading 1s as everywhere in the module); other dtypes or
layouts raise TypeError / ValueError naming the argument unless copy=True is passed (which
converts real data, torch bfloat16 included, to float32; complex data raises TypeError).
Raises attnkit.Error (a ValueError) naming the argument for a bad spec, size, storage or
key_lengths. Every library error is raised before anything changes (a failed append leaves
the cache as it was), except two of performer / linear attend, raised after some heads' states
moved on: out of memory, and a query whose features underflowed float32 (see
include/attnkit/kernelized.hpp); that Decoder then raises attnkit.Error on every later call.
Thread-safety: none, as the C++ Decoder: one Decoder per stream. append/attend/step release
the GIL (other Python threads run meanwhile; attend uses the OpenMP threads inside), and a
call on a Decoder that another thread is using raises RuntimeError instead of racing.)doc";

}  // namespace

void bind_decode(py::module_& m) {
  py::class_<PyDecoder>(m, "Decoder", kDecoderDoc)
      .def(py::init(&make_decoder), "spec"_a, py::kw_only(), "batch"_a = 1, "heads"_a = 1, "kv_heads"_a = 1,
           "capacity"_a = 4096, "d"_a = 64, "d_v"_a = py::none(), "storage"_a = "f32", "max_step"_a = 1,
           "key_lengths"_a = py::none(), "scale"_a = py::none(),
           "__init__(spec, *, batch=1, heads=1, kv_heads=1, capacity=4096, d=64, d_v=None, storage=\"f32\", "
           "max_step=1, key_lengths=None, scale=None)\n\nSee attnkit.Decoder.")
      .def("append", &append, "k"_a, "v"_a, py::kw_only(), "copy"_a = false,
           R"doc(append(k, v, *, copy=False)

Appends t >= 1 positions: k [B, H_kv, t, d], v [B, H_kv, t, d_v], float32 (the keys and values
are copied into the decoder's storage, converted to bf16 / int8 when so configured). Raises
attnkit.Error for a shape mismatch or, for exact and pages, going past the capacity; the cache
is then unchanged. Releases the GIL.)doc")
      .def("attend", &attend, "q"_a, "out"_a = py::none(), py::kw_only(), "threads"_a = py::none(),
           "copy"_a = false,
           R"doc(attend(q, out=None, *, threads=None, copy=False)

Decodes the last t appended positions: q [B, H, t, d] float32 -> [B, H, t, d_v] float32, of q's
rank and type (numpy array or torch tensor). out: optional float32 buffer of that shape (any
unit-last-stride layout, e.g. C-contiguous; not overlapping q), written in place and returned.
threads: OpenMP threads for this call; None keeps the current count.
Raises attnkit.Error for a shape mismatch, t > size, t > max_step (local, performer, linear),
positions a performer / linear decoder already attended, out overlapping q, or (performer /
linear, which it leaves unusable) a query whose features underflowed. Releases the GIL.)doc")
      .def(
          "step",
          [](PyDecoder& dec, py::handle q, py::handle k, py::handle v, py::handle out, std::optional<int> threads,
             bool copy) {
            append(dec, k, v, copy);
            return attend(dec, q, out, threads, copy);
          },
          "q"_a, "k"_a, "v"_a, "out"_a = py::none(), py::kw_only(), "threads"_a = py::none(), "copy"_a = false,
          R"doc(step(q, k, v, out=None, *, threads=None, copy=False)

append(k, v) then attend(q, out): the usual call per generated token. If append raises,
nothing changed; if attend then raises (e.g. a q of the wrong shape), the positions stay
appended, as in the C++ Decoder::step. Two calls, not one atomic step: another thread's call
can come between them (use one Decoder per stream).)doc")
      .def_property_readonly(
          "size",
          [](const PyDecoder& d) {
            check_idle(d);
            return d.impl.size();
          },
          "Positions appended so far.")
      .def_property_readonly(
          "spec", [](const PyDecoder& d) { return d.impl.spec(); },
          "Canonical spec string with every default filled in (e.g. 'pages:page=16,keep=1024').")
      .def_property_readonly(
          "config", [](const PyDecoder& d) { return config_dict(d.impl.config()); },
          "The configuration as a dict: batch, heads, kv_heads, capacity, d, d_v, storage, max_step, "
          "key_lengths (list or None), scale (float or None).")
      .def_property_readonly(
          "bytes",
          [](const PyDecoder& d) {
            check_idle(d);
            return d.impl.bytes();
          },
          "Bytes of memory of the decode state (cache, page bounds or recurrent state).")
      .def_property_readonly(
          "bytes_read",
          [](const PyDecoder& d) {
            check_idle(d);
            return d.impl.bytes_read();
          },
          "Cache bytes the last attend read (0 before the first).")
      .def(
          "selected_pages",
          [](const PyDecoder& d, int64_t b, int64_t g) {
            check_idle(d);
            return d.impl.selected_pages(b, g);
          },
          "b"_a, "g"_a,
          R"doc(selected_pages(b, g)

pages backend: the pages (index = position // page, ascending list of ints) the last attend
used for batch entry b and kv head g. Other backends: an empty list (they select no pages).
Raises attnkit.Error for b outside [0, batch) or g outside [0, kv_heads).)doc")
      .def("__repr__", &repr);
}

}  // namespace attnkit::python
