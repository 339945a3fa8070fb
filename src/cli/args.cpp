#include "args.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "attnkit/error.hpp"

namespace attnkit::cli {

Args::Args(const std::vector<std::string>& argv, const std::set<std::string>& valued,
           const std::set<std::string>& switches) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (switches.count(a)) {
      switches_.insert(a);
    } else if (valued.count(a)) {
      if (i + 1 >= argv.size()) detail::fail(a, ": missing value");
      if (values_.count(a)) detail::fail(a, ": given twice; expected once");
      // No flag takes an empty value: an empty path would write a hidden file (".png") or read the
      // current directory, an empty list would run nothing.
      if (argv[i + 1].empty()) detail::fail(a, " '': empty value; expected a non-empty one");
      values_[a] = argv[++i];
    } else {
      std::string known;
      for (const auto& v : valued) known += " " + v;
      for (const auto& s : switches) known += " " + s;
      detail::fail("unknown argument '", a, "'; expected one of:", known);
    }
  }
}

bool Args::has(const std::string& flag) const { return values_.count(flag) || switches_.count(flag); }

std::string Args::str(const std::string& flag) const {
  auto it = values_.find(flag);
  if (it == values_.end()) detail::fail(flag, ": required");
  return it->second;
}

std::string Args::str(const std::string& flag, const std::string& fallback) const {
  auto it = values_.find(flag);
  return it == values_.end() ? fallback : it->second;
}

int64_t Args::integer(const std::string& flag, int64_t fallback, int64_t lo, int64_t hi) const {
  auto it = values_.find(flag);
  if (it == values_.end()) return fallback;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi)
    detail::fail(flag, " ", it->second, ": expected an integer in [", lo, ", ", hi, "]");
  return v;
}

double Args::number(const std::string& flag) const {
  const std::string s = str(flag);
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v))
    detail::fail(flag, " ", s, ": expected a finite number");
  return v;
}

Tensor load_tensor(const std::string& flag, const std::string& path, int* rank) {
  const NpyArray a = read_npy(path);
  if (a.dtype != NpyArray::DType::Float32) detail::fail(flag, " ", path, ": dtype int32; expected float32");
  const size_t r = a.shape.size();
  if (r < 2 || r > 4)
    detail::fail(flag, " ", path, ": rank ", r, "; expected [B,H,N,D], [H,N,D] or [N,D]");
  int64_t s[4] = {1, 1, 1, 1};
  for (size_t i = 0; i < r; ++i) s[4 - r + i] = a.shape[i];
  for (int64_t x : s)
    if (x < 1) detail::fail(flag, " ", path, ": an empty dimension; expected every dimension >= 1");
  if (rank) *rank = static_cast<int>(r);
  Tensor t(s[0], s[1], s[2], s[3]);
  std::memcpy(t.data(), a.f32.data(), a.f32.size() * sizeof(float));
  return t;
}

std::vector<int32_t> load_key_lengths(const std::string& path, int64_t batch) {
  NpyArray L = read_npy(path);
  if (L.dtype != NpyArray::DType::Int32) detail::fail("--key-lengths ", path, ": dtype float32; expected int32");
  if (L.shape.size() != 1) detail::fail("--key-lengths ", path, ": rank ", L.shape.size(), "; expected 1 ([B])");
  // Checked here, not left to the Problem: an empty file would pass as "no key_lengths" there.
  if (L.shape[0] != batch)
    detail::fail("--key-lengths ", path, ": shape [", L.shape[0], "]; expected [", batch, "] (one per batch)");
  return std::move(L.i32);
}

std::optional<float> load_scale(const Args& args) {
  if (!args.has("--scale")) return std::nullopt;
  const double s = args.number("--scale");
  const std::string typed = args.str("--scale");
  // The value as typed: 1e-50 and 1e39 are finite doubles but 0 and inf as float32 (and the cast
  // of a double beyond float's range is undefined).
  if (!(s > 0)) detail::fail("--scale ", typed, ": expected a finite value > 0");
  if (s > std::numeric_limits<float>::max())
    detail::fail("--scale ", typed, ": above float32's largest value ", std::numeric_limits<float>::max(),
                 "; expected a finite value > 0 within float32's range");
  const float f = static_cast<float>(s);
  if (f == 0)
    detail::fail("--scale ", typed, ": 0 as float32 (below its smallest value ",
                 std::numeric_limits<float>::denorm_min(), "); expected a finite value > 0 within float32's range");
  return f;
}

void save_tensor(const std::string& path, const Tensor& t, int rank) {
  std::vector<int64_t> shape(t.shape().begin() + (4 - rank), t.shape().end());
  write_npy(path, t.data(), shape);
}

}  // namespace attnkit::cli
