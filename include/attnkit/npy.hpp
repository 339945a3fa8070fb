#pragma once
// .npy files (NumPy format versions 1.0, 2.0, 3.0): float32 and int32, C order, little-endian.
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
// a bad magic string or version, a malformed header, a dtype other than '<f4'/'<i4', Fortran
// order, a negative or overflowing shape, more than max_bytes of data, or a truncated file.
// Never allocates more than the file's actual size allows.
NpyArray read_npy(const std::string& path, int64_t max_bytes = int64_t{1} << 34);

// Parses an in-memory .npy image (same checks as read_npy; `name` is used in messages).
NpyArray parse_npy(const void* data, size_t size, const std::string& name, int64_t max_bytes = int64_t{1} << 34);

// Writes a C-order float32 / int32 array of the given shape (version 1.0 header).
void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape);
void write_npy(const std::string& path, const int32_t* data, const std::vector<int64_t>& shape);

}  // namespace attnkit
