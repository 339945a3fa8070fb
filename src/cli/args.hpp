#pragma once
// Minimal `--flag value` / `--switch` parser for the attnkit command; errors are attnkit::Error.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "attnkit/npy.hpp"
#include "attnkit/tensor.hpp"

namespace attnkit::cli {

class Args {
 public:
  // `valued`: flags that take a value; `switches`: flags without one. Anything else is an error.
  Args(const std::vector<std::string>& argv, const std::set<std::string>& valued,
       const std::set<std::string>& switches);
  bool has(const std::string& flag) const;
  std::string str(const std::string& flag) const;  // required
  std::string str(const std::string& flag, const std::string& fallback) const;
  int64_t integer(const std::string& flag, int64_t fallback, int64_t lo, int64_t hi) const;
  double number(const std::string& flag) const;  // required, finite

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> switches_;
};

// Loads a float32 .npy of rank 2, 3 or 4 as a dense [B,H,N,D] tensor (missing leading axes = 1).
// `rank`, when given, receives the file's rank.
Tensor load_tensor(const std::string& flag, const std::string& path, int* rank = nullptr);
// Loads a --key-lengths file: int32 .npy of shape [batch] (an empty file is refused, not taken as
// "no key lengths"); the values are checked by the Problem.
std::vector<int32_t> load_key_lengths(const std::string& path, int64_t batch);
// --scale S as float32 (nullopt when not given); refuses a value that is not finite and > 0 once
// rounded to float32, naming the flag and the value as typed.
std::optional<float> load_scale(const Args& args);
// Writes `t` with the given rank (2, 3 or 4), dropping leading unit axes.
void save_tensor(const std::string& path, const Tensor& t, int rank);

}  // namespace attnkit::cli
