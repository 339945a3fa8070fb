#include "attnkit/npy.hpp"

#include <cstring>
#include <fstream>
#include <limits>
#include <string>

#include "attnkit/error.hpp"

namespace attnkit {

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

namespace {

[[noreturn]] void bad(const std::string& path, const std::string& why) {
  detail::fail("npy file '", path, "': ", why);
}

// Finds the value text that follows 'key': in a Python dict literal header.
std::string dict_value(const std::string& path, const std::string& h, const std::string& key) {
  const std::string k1 = "'" + key + "'";
  size_t p = h.find(k1);
  if (p == std::string::npos) bad(path, "header has no " + k1 + " entry; expected a NumPy .npy header");
  p = h.find(':', p + k1.size());
  if (p == std::string::npos) bad(path, "header entry " + k1 + " has no ':'");
  ++p;
  while (p < h.size() && h[p] == ' ') ++p;
  if (p >= h.size()) bad(path, "header entry " + k1 + " has no value");
  size_t e;
  if (h[p] == '\'') {
    e = h.find('\'', p + 1);
    if (e == std::string::npos) bad(path, "header entry " + k1 + " is an unterminated string");
    return h.substr(p + 1, e - p - 1);
  }
  if (h[p] == '(') {
    e = h.find(')', p);
    if (e == std::string::npos) bad(path, "header entry " + k1 + " is an unterminated tuple");
    return h.substr(p + 1, e - p - 1);
  }
  e = h.find_first_of(",}", p);
  if (e == std::string::npos) bad(path, "header entry " + k1 + " is unterminated");
  return h.substr(p, e - p);
}

std::vector<int64_t> parse_shape(const std::string& path, const std::string& t) {
  std::vector<int64_t> shape;
  size_t p = 0;
  while (p < t.size()) {
    while (p < t.size() && (t[p] == ' ' || t[p] == ',')) ++p;
    if (p >= t.size()) break;
    if (t[p] < '0' || t[p] > '9') bad(path, "shape '(" + t + ")' has a non-numeric entry; expected non-negative integers");
    int64_t v = 0;
    while (p < t.size() && t[p] >= '0' && t[p] <= '9') {
      if (v > (std::numeric_limits<int64_t>::max() - 9) / 10) bad(path, "shape entry overflows int64");
      v = v * 10 + (t[p] - '0');
      ++p;
    }
    while (p < t.size() && t[p] == ' ') ++p;
    if (p < t.size() && t[p] != ',') bad(path, "shape '(" + t + ")' is malformed; expected (n, m, ...)");
    shape.push_back(v);
    if (shape.size() > 32) bad(path, "shape has more than 32 dimensions");
  }
  return shape;
}

void write_any(const std::string& path, const void* data, size_t elem, const char* descr,
               const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) {
    if (s < 0) detail::fail("npy write '", path, "': negative dimension ", s);
    n *= s;
  }
  std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) dict += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dict += ",";  // Python's one-element tuple
  dict += "), }";
  // magic(6) + version(2) + len(2) + header, padded with spaces to a multiple of 64, ending in \n
  size_t total = 10 + dict.size() + 1;
  const size_t pad = (64 - total % 64) % 64;
  dict.append(pad, ' ');
  dict += '\n';
  std::ofstream f(path, std::ios::binary);
  if (!f) detail::fail("npy write '", path, "': cannot open for writing");
  const unsigned char head[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  f.write(reinterpret_cast<const char*>(head), 8);
  const uint16_t hl = static_cast<uint16_t>(dict.size());
  const unsigned char len[2] = {static_cast<unsigned char>(hl & 0xff), static_cast<unsigned char>(hl >> 8)};
  f.write(reinterpret_cast<const char*>(len), 2);
  f.write(dict.data(), static_cast<std::streamsize>(dict.size()));
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n * static_cast<int64_t>(elem)));
  if (!f) detail::fail("npy write '", path, "': write failed");
}

}  // namespace

NpyArray parse_npy(const void* data, size_t size, const std::string& path, int64_t max_bytes) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  const int64_t file_size = static_cast<int64_t>(size);
  if (file_size < 10) bad(path, "truncated before the header; expected a .npy file");
  if (std::memcmp(p, "\x93NUMPY", 6) != 0) bad(path, "bad magic string; expected \\x93NUMPY");
  const int major = p[6];
  if (major < 1 || major > 3)
    bad(path, "format version " + std::to_string(major) + "." + std::to_string(p[7]) + "; expected 1.0, 2.0 or 3.0");
  const int lenbytes = major == 1 ? 2 : 4;
  if (file_size < 8 + lenbytes) bad(path, "truncated header length");
  uint64_t hlen = 0;
  for (int i = lenbytes - 1; i >= 0; --i) hlen = (hlen << 8) | p[8 + i];
  const int64_t data_off = 8 + lenbytes + static_cast<int64_t>(hlen);
  if (hlen > (1u << 20) || data_off > file_size)
    bad(path, "header length " + std::to_string(hlen) + " exceeds the file; expected a complete header");
  const std::string h(reinterpret_cast<const char*>(p + 8 + lenbytes), hlen);
  if (h.find('{') == std::string::npos || h.find('}') == std::string::npos) bad(path, "header is not a dict literal");
  const std::string descr = dict_value(path, h, "descr");
  const std::string fortran = dict_value(path, h, "fortran_order");
  const std::vector<int64_t> shape = parse_shape(path, dict_value(path, h, "shape"));
  NpyArray a;
  if (descr == "<f4") a.dtype = NpyArray::DType::Float32;
  else if (descr == "<i4") a.dtype = NpyArray::DType::Int32;
  else bad(path, "dtype '" + descr + "'; expected '<f4' (float32) or '<i4' (int32)");
  if (fortran == "True") bad(path, "Fortran order; expected C order (numpy.ascontiguousarray)");
  if (fortran != "False") bad(path, "fortran_order '" + fortran + "'; expected False");
  int64_t n = 1;
  for (int64_t s : shape) {
    if (s != 0 && n > max_bytes / 4 / s) bad(path, "shape too large; expected at most " + std::to_string(max_bytes) + " bytes");
    n *= s;
  }
  const int64_t bytes = n * 4;
  if (file_size - data_off < bytes)
    bad(path, "truncated data: " + std::to_string(file_size - data_off) + " bytes; expected " + std::to_string(bytes));
  a.shape = shape;
  if (a.dtype == NpyArray::DType::Float32) {
    a.f32.resize(static_cast<size_t>(n));
    if (n > 0) std::memcpy(a.f32.data(), p + data_off, static_cast<size_t>(bytes));
  } else {
    a.i32.resize(static_cast<size_t>(n));
    if (n > 0) std::memcpy(a.i32.data(), p + data_off, static_cast<size_t>(bytes));
  }
  return a;
}

NpyArray read_npy(const std::string& path, int64_t max_bytes) {
  std::ifstream f(path, std::ios::binary);
  if (!f) bad(path, "cannot open (missing or unreadable)");
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  if (size < 0) bad(path, "cannot determine its size");
  // The file's own size bounds the allocation; max_bytes bounds the file.
  if (size > max_bytes + (int64_t{1} << 21)) bad(path, "file larger than the limit of " + std::to_string(max_bytes) + " bytes");
  f.seekg(0);
  std::vector<char> buf(static_cast<size_t>(size));
  if (size > 0 && !f.read(buf.data(), size)) bad(path, "read failed");
  return parse_npy(buf.data(), buf.size(), path, max_bytes);
}

void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  write_any(path, data, 4, "<f4", shape);
}
void write_npy(const std::string& path, const int32_t* data, const std::vector<int64_t>& shape) {
  write_any(path, data, 4, "<i4", shape);
}

}  // namespace attnkit
