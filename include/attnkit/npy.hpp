#pragma once
// .npy files (NumPy format versions 1.0, 2.0, 3.0): float32 and int32, C order, little-endian.
// Thread-safety: no shared state; concurrent calls are safe (on distinct files when writing).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace attnkit {

struct NpyArray {
  enum class DType { Float32, Int32 };
  DType dtype = DType::Float32;
  std::vector<int64_t> shape;
  std::vector<float> f32;    // filled when dtype == Float32
  std::vector<int32_t> i32;  // filled when dtype == Int32
  int64_t numel() const;
};

// Reads a .npy file. Throws attnkit::Error (naming the file and the problem) for a missing file,
// a bad magic string or version, a malformed header (as numpy's reader: a dict of exactly the keys
// 'descr', 'fortran_order' and 'shape', then only padding), a dtype other than '<f4'/'<i4', Fortran
// order, a negative or overflowing shape, more than max_bytes of data, or a truncated file.
// Never allocates more than the file's actual size allows.
NpyArray read_npy(const std::string& path, int64_t max_bytes = int64_t{1} << 34);

// Parses an in-memory .npy image (same checks as read_npy; `name` is used in messages).
NpyArray parse_npy(const void* data, size_t size, const std::string& name, int64_t max_bytes = int64_t{1} << 34);

// A .npy file's header without its data: for reading only part of a large array (one rank's rows
// under MPI, say) without loading the whole file.
struct NpyHeader {
  NpyArray::DType dtype = NpyArray::DType::Float32;
  std::vector<int64_t> shape;
  int64_t data_offset = 0;  // byte offset of element 0 in the file
  int64_t numel() const;
};

// Reads and checks only the header (same checks as read_npy, including that the file is long
// enough to hold every element). Reads at most the header's bytes, whatever the file's size.
NpyHeader read_npy_header(const std::string& path, int64_t max_bytes = int64_t{1} << 34);

// Reads elements [first, first + count) (C order, 4 bytes each) of the file described by `h` into
// dst: one seek, one read. Throws attnkit::Error for a range outside [0, h.numel()) or a failed read.
void read_npy_elements(const std::string& path, const NpyHeader& h, int64_t first, int64_t count, void* dst);

// The exact header bytes write_npy writes for a float32 array of `shape` (version 1.0, padded to
// 64 bytes): the data follows at header.size(). For writers that fill the data in pieces. Throws
// attnkit::Error for a negative dimension or a shape whose header would pass 65535 bytes.
std::string npy_header(const std::vector<int64_t>& shape);

// Writes a C-order float32 / int32 array of the given shape (version 1.0 header); data holds the
// product of shape elements. Throws attnkit::Error (naming the file) for a negative dimension, a
// file that cannot be opened for writing or a failed write, and what npy_header throws.
void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape);
void write_npy(const std::string& path, const int32_t* data, const std::vector<int64_t>& shape);

}  // namespace attnkit
