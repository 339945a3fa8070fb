#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "attnkit/attnkit.hpp"

using namespace attnkit;

namespace {
std::string tmp(const std::string& name) { return "npy_test_" + name + ".npy"; }

void write_raw(const std::string& path, int major, const std::string& header, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY", 6);
  f.put(static_cast<char>(major));
  f.put(0);
  const uint32_t n = static_cast<uint32_t>(header.size());
  if (major == 1) {
    f.put(static_cast<char>(n & 0xff));
    f.put(static_cast<char>(n >> 8));
  } else {
    for (int i = 0; i < 4; ++i) f.put(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  f << header << data;
}
}  // namespace

TEST_CASE("npy round trip float32 and int32, ranks 1 to 4", "[npy]") {
  std::vector<float> f(2 * 3 * 4 * 5);
  for (size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(i) * 0.5f - 3;
  for (std::vector<int64_t> shape : std::vector<std::vector<int64_t>>{{120}, {12, 10}, {2, 3, 20}, {2, 3, 4, 5}}) {
    write_npy(tmp("rt"), f.data(), shape);
    const NpyArray a = read_npy(tmp("rt"));
    CHECK(a.shape == shape);
    CHECK(a.f32 == f);
  }
  std::vector<int32_t> l{3, 0, 7};
  write_npy(tmp("i"), l.data(), {3});
  const NpyArray b = read_npy(tmp("i"));
  CHECK(b.dtype == NpyArray::DType::Int32);
  CHECK(b.i32 == l);
  std::remove(tmp("rt").c_str());
  std::remove(tmp("i").c_str());
}

TEST_CASE("npy versions 2.0 and 3.0 and scalar shape", "[npy]") {
  std::string data(8, '\0');
  write_raw(tmp("v2"), 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", data);
  CHECK(read_npy(tmp("v2")).shape == std::vector<int64_t>{2});
  write_raw(tmp("v3"), 3, "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 2), }\n", data);
  CHECK(read_npy(tmp("v3")).i32.size() == 2);
  write_raw(tmp("v0"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n", data);
  CHECK(read_npy(tmp("v0")).f32.size() == 1);
  // No trailing comma, other key order, double quotes, padding: all as numpy reads them.
  write_raw(tmp("v2"), 1, "{\"shape\": (2,), 'fortran_order': False, 'descr': '<f4'}          \n", data);
  CHECK(read_npy(tmp("v2")).shape == std::vector<int64_t>{2});
  for (auto n : {"v2", "v3", "v0"}) std::remove(tmp(n).c_str());
}

TEST_CASE("malformed npy files give clear errors", "[npy]") {
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\n";
  const std::string data(16, '\0');
  struct Case { std::string header; std::string data; int major; const char* msg; };
  const Case cases[] = {
      {"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }\n", data, 1, "dtype '<f8'"},
      {"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }\n", data, 1, "dtype '>f4'"},
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n", data, 1, "Fortran order"},
      {ok, std::string(15, '\0'), 1, "truncated data"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }\n", data, 1, "too large"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 2), }\n", data, 1, "non-numeric"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 2), }\n", data, 1, "malformed"},
      {"{'descr': '<f4', 'shape': (2, 2), }\n", data, 1, "fortran_order"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2}\n", data, 1, "unterminated tuple"},
      {"not a dict at all\n", data, 1, "not a dict"},
      // numpy's reader refuses these too: other keys, a key twice, text after the dict
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'extra': 1, }\n", data, 1, "'extra' is unknown"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\n", data, 1, "'descr' twice"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), } x\n", data, 1, "text after its dict"},
      {"{'descr': '<f4' 'fortran_order': False, 'shape': (2, 2), }\n", data, 1, "malformed after entry 'descr'"},
      {"{'note': \"'descr': '<f4'\", 'fortran_order': False, 'shape': (2, 2)}\n", data, 1, "'note' is unknown"},
      {ok, data, 4, "version 4"},
  };
  for (const Case& c : cases) {
    write_raw(tmp("bad"), c.major, c.header, c.data);
    CHECK_THROWS_WITH(read_npy(tmp("bad")), Catch::Contains(c.msg));
  }
  {
    std::ofstream f(tmp("bad"), std::ios::binary);
    f << "NUMPY garbage garbage";
  }
  CHECK_THROWS_WITH(read_npy(tmp("bad")), Catch::Contains("magic"));
  {
    std::ofstream f(tmp("bad"), std::ios::binary);
    f.write("\x93NUMPY\x01\x00\xff\xff{}", 12);
  }
  CHECK_THROWS_WITH(read_npy(tmp("bad")), Catch::Contains("exceeds the file"));
  {
    std::ofstream f(tmp("bad"), std::ios::binary);
    f.write("\x93NU", 4);
  }
  CHECK_THROWS_WITH(read_npy(tmp("bad")), Catch::Contains("truncated"));
  CHECK_THROWS_WITH(read_npy("/nonexistent/x.npy"), Catch::Contains("cannot open"));
  // A directory opens as a stream on Linux (its size was then "larger than the limit").
  const std::string dir = "npy_test_dir";
  std::filesystem::create_directory(dir);
  CHECK_THROWS_WITH(read_npy(dir), Catch::Equals("npy file 'npy_test_dir': is a directory; expected an .npy file"));
  CHECK_THROWS_WITH(read_npy_header(dir), Catch::Contains("is a directory"));
  std::filesystem::remove(dir);
  std::remove(tmp("bad").c_str());
}

TEST_CASE("npy header-only read, element ranges at their offsets, and the writer's header", "[npy]") {
  std::vector<float> f(3 * 7 * 5);
  for (size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(i) * 0.25f - 1;
  write_npy(tmp("part"), f.data(), {3, 7, 5});
  const NpyHeader h = read_npy_header(tmp("part"));
  CHECK(h.shape == std::vector<int64_t>{3, 7, 5});
  CHECK(h.dtype == NpyArray::DType::Float32);
  CHECK(h.numel() == 105);
  CHECK(h.data_offset == static_cast<int64_t>(npy_header({3, 7, 5}).size()));
  CHECK(h.data_offset % 64 == 0);
  std::vector<float> part(12, -9.0f);
  read_npy_elements(tmp("part"), h, 40, 11, part.data());  // rows 1..3 of slab 1, one element more
  for (int i = 0; i < 11; ++i) CHECK(part[size_t(i)] == f[size_t(40 + i)]);
  CHECK(part[11] == -9.0f);
  read_npy_elements(tmp("part"), h, 105, 0, part.data());  // empty range at the end: nothing
  CHECK_THROWS_WITH(read_npy_elements(tmp("part"), h, 100, 6, part.data()), Catch::Contains("expected a range within [0, 105)"));
  CHECK_THROWS_WITH(read_npy_elements(tmp("part"), h, -1, 2, part.data()), Catch::Contains("expected a range"));
  // The header check covers a truncated file without reading its data.
  write_raw(tmp("short"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }\n", std::string(60, '\0'));
  CHECK_THROWS_WITH(read_npy_header(tmp("short")), Catch::Contains("truncated data: 60 bytes; expected 64"));
  CHECK_THROWS_WITH(read_npy_header(tmp("nonexistent")), Catch::Contains("cannot open"));
  CHECK_THROWS_WITH(npy_header({2, -1}), Catch::Contains("negative dimension -1"));
  for (auto n : {"part", "short"}) std::remove(tmp(n).c_str());
}
