#include "attnkit/npy.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <vector>

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

// An ifstream opens a directory on Linux, and its size (tellg) is then garbage: say what it is.
std::ifstream open_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) bad(path, "is a directory; expected an .npy file");
  std::ifstream f(path, std::ios::binary);
  if (!f) bad(path, "cannot open (missing or unreadable)");
  return f;
}

// The header dict, parsed as numpy writes it and as numpy's reader accepts it: { 'key': value, ... }
// with an optional trailing comma, then only spaces (the padding) and the final newline; values a
// quoted string (its text), a tuple (the text inside the parentheses) or a bare word (True /
// False). Exactly the keys 'descr', 'fortran_order' and 'shape', each once (numpy refuses others).
std::map<std::string, std::string> parse_dict(const std::string& path, const std::string& h) {
  size_t p = 0;
  auto ws = [&] {
    while (p < h.size() && (h[p] == ' ' || h[p] == '\t' || h[p] == '\n' || h[p] == '\r')) ++p;
  };
  // The text of the quoted string at p (either quote), p then past its closing quote.
  auto quoted = [&](const std::string& what) {
    const size_t e = h.find(h[p], p + 1);
    if (e == std::string::npos) bad(path, what + " is an unterminated string");
    const std::string text = h.substr(p + 1, e - p - 1);
    p = e + 1;
    return text;
  };
  ws();
  if (p >= h.size() || h[p] != '{') bad(path, "header is not a dict literal; expected a NumPy .npy header");
  ++p;
  std::map<std::string, std::string> d;
  for (;;) {
    ws();
    if (p < h.size() && h[p] == '}') break;
    if (p >= h.size() || (h[p] != '\'' && h[p] != '"'))
      bad(path, "header dict is malformed at byte " + std::to_string(p) + "; expected a quoted key or '}'");
    const std::string key = quoted("header key"), k1 = "'" + key + "'";
    ws();
    if (p >= h.size() || h[p] != ':') bad(path, "header entry " + k1 + " has no ':'");
    ++p;
    ws();
    if (p >= h.size()) bad(path, "header entry " + k1 + " has no value");
    std::string value;
    if (h[p] == '\'' || h[p] == '"') {
      value = quoted("header entry " + k1);
    } else if (h[p] == '(') {
      const size_t e = h.find(')', p);
      if (e == std::string::npos) bad(path, "header entry " + k1 + " is an unterminated tuple");
      value = h.substr(p + 1, e - p - 1);
      p = e + 1;
    } else {
      const size_t e = h.find_first_of(",} ", p);
      if (e == std::string::npos) bad(path, "header entry " + k1 + " is unterminated");
      value = h.substr(p, e - p);
      p = e;
    }
    if (key != "descr" && key != "fortran_order" && key != "shape")
      bad(path, "header entry " + k1 + " is unknown; expected exactly 'descr', 'fortran_order' and 'shape'");
    if (!d.emplace(key, value).second) bad(path, "header has the entry " + k1 + " twice");
    ws();
    if (p < h.size() && h[p] == ',') {
      ++p;
      continue;
    }
    if (p < h.size() && h[p] == '}') break;
    bad(path, "header dict is malformed after entry " + k1 + "; expected ',' or '}'");
  }
  ++p;  // the '}'
  ws();
  if (p != h.size()) bad(path, "header has text after its dict; expected only padding spaces and a newline");
  for (const char* key : {"descr", "fortran_order", "shape"})
    if (!d.count(key)) bad(path, std::string("header has no '") + key + "' entry; expected a NumPy .npy header");
  return d;
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

// Version 1.0 header: magic(6) + version(2) + len(2) + dict, padded with spaces to a multiple
// of 64 bytes and ending in \n.
std::string header_bytes(const char* descr, const std::vector<int64_t>& shape) {
  for (int64_t d : shape)
    if (d < 0) detail::fail("npy header: negative dimension ", d, "; expected dimensions >= 0");
  std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) dict += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dict += ",";  // Python's one-element tuple
  dict += "), }";
  size_t total = 10 + dict.size() + 1;
  const size_t pad = (64 - total % 64) % 64;
  dict.append(pad, ' ');
  dict += '\n';
  // Version 1.0 stores the header length in 16 bits.
  if (dict.size() > 65535) detail::fail("npy header: ", shape.size(), " dimensions need ", dict.size(), " header bytes; expected at most 65535 (version 1.0)");
  const uint16_t hl = static_cast<uint16_t>(dict.size());
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(hl & 0xff);
  out += static_cast<char>(hl >> 8);
  return out + dict;
}

void write_any(const std::string& path, const void* data, size_t elem, const char* descr,
               const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) {
    if (s < 0) detail::fail("npy write '", path, "': negative dimension ", s);
    n *= s;
  }
  const std::string head = header_bytes(descr, shape);
  std::ofstream f(path, std::ios::binary);
  if (!f) detail::fail("npy write '", path, "': cannot open for writing");
  f.write(head.data(), static_cast<std::streamsize>(head.size()));
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n * static_cast<int64_t>(elem)));
  if (!f) detail::fail("npy write '", path, "': write failed");
}

// Parses the header at the start of `p` (`size` bytes available, `file_size` bytes in the file):
// dtype, shape, data offset, and that the file holds every element.
NpyHeader parse_header(const unsigned char* p, int64_t size, int64_t file_size, const std::string& path,
                       int64_t max_bytes) {
  if (size < 10) bad(path, "truncated before the header; expected a .npy file");
  if (std::memcmp(p, "\x93NUMPY", 6) != 0) bad(path, "bad magic string; expected \\x93NUMPY");
  const int major = p[6];
  if (major < 1 || major > 3)
    bad(path, "format version " + std::to_string(major) + "." + std::to_string(p[7]) + "; expected 1.0, 2.0 or 3.0");
  const int lenbytes = major == 1 ? 2 : 4;
  if (size < 8 + lenbytes) bad(path, "truncated header length");
  uint64_t hlen = 0;
  for (int i = lenbytes - 1; i >= 0; --i) hlen = (hlen << 8) | p[8 + i];
  const int64_t data_off = 8 + lenbytes + static_cast<int64_t>(hlen);
  if (hlen > (1u << 20) || data_off > size)
    bad(path, "header length " + std::to_string(hlen) + " exceeds the file; expected a complete header");
  const std::string h(reinterpret_cast<const char*>(p + 8 + lenbytes), hlen);
  const std::map<std::string, std::string> dict = parse_dict(path, h);
  const std::string& descr = dict.at("descr");
  const std::string& fortran = dict.at("fortran_order");
  NpyHeader a;
  a.shape = parse_shape(path, dict.at("shape"));
  if (descr == "<f4") a.dtype = NpyArray::DType::Float32;
  else if (descr == "<i4") a.dtype = NpyArray::DType::Int32;
  else bad(path, "dtype '" + descr + "'; expected '<f4' (float32) or '<i4' (int32)");
  if (fortran == "True") bad(path, "Fortran order; expected C order (numpy.ascontiguousarray)");
  if (fortran != "False") bad(path, "fortran_order '" + fortran + "'; expected False");
  int64_t n = 1;
  for (int64_t s : a.shape) {
    if (s != 0 && n > max_bytes / 4 / s) bad(path, "shape too large; expected at most " + std::to_string(max_bytes) + " bytes");
    n *= s;
  }
  const int64_t bytes = n * 4;
  if (file_size - data_off < bytes)
    bad(path, "truncated data: " + std::to_string(file_size - data_off) + " bytes; expected " + std::to_string(bytes));
  a.data_offset = data_off;
  return a;
}

}  // namespace

int64_t NpyHeader::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

NpyArray parse_npy(const void* data, size_t size, const std::string& path, int64_t max_bytes) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  const int64_t file_size = static_cast<int64_t>(size);
  const NpyHeader hd = parse_header(p, file_size, file_size, path, max_bytes);
  const std::vector<int64_t>& shape = hd.shape;
  const int64_t n = hd.numel(), bytes = n * 4, data_off = hd.data_offset;
  NpyArray a;
  a.dtype = hd.dtype;
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
  std::ifstream f = open_file(path);
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

NpyHeader read_npy_header(const std::string& path, int64_t max_bytes) {
  std::ifstream f = open_file(path);
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  if (size < 0) bad(path, "cannot determine its size");
  f.seekg(0);
  // The header is at most 12 + 1 MiB bytes (parse_header's limit on its length).
  std::vector<char> buf(static_cast<size_t>(std::min<std::streamoff>(size, 12 + (1 << 20))));
  if (!buf.empty() && !f.read(buf.data(), static_cast<std::streamsize>(buf.size()))) bad(path, "read failed");
  return parse_header(reinterpret_cast<const unsigned char*>(buf.data()), static_cast<int64_t>(buf.size()), size, path,
                      max_bytes);
}

void read_npy_elements(const std::string& path, const NpyHeader& h, int64_t first, int64_t count, void* dst) {
  if (first < 0 || count < 0 || first > h.numel() - count)
    detail::fail("npy file '", path, "': elements [", first, ", ", first + count, ") requested; expected a range within [0, ",
                 h.numel(), ")");
  if (count == 0) return;
  std::ifstream f(path, std::ios::binary);
  if (!f) bad(path, "cannot open (missing or unreadable)");
  f.seekg(h.data_offset + first * 4);
  if (!f.read(static_cast<char*>(dst), static_cast<std::streamsize>(count * 4)))
    bad(path, "read of " + std::to_string(count) + " elements at element " + std::to_string(first) + " failed");
}

std::string npy_header(const std::vector<int64_t>& shape) {
  for (int64_t s : shape)
    if (s < 0) detail::fail("npy header: negative dimension ", s);
  return header_bytes("<f4", shape);
}

}  // namespace attnkit
