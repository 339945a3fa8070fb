#pragma once
// The sweep's suites: which backend settings, input families and sizes a run covers.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace attnkit::cli {

struct Suite {
  std::string name;
  std::vector<std::string> backends;  // spec strings; "exact" always runs first (speedups need it)
  std::vector<std::string> families;  // generated input families
  std::vector<int64_t> n;             // sequence lengths of the generated inputs
  int64_t heads = 4, d = 64;
  int repeat = 3;                     // timed runs per case after the checked warm-up run
  // ... and more (up to 1000) until the timed runs add up to this: the best of 3 runs of a
  // 0.5 ms case is one scheduler hiccup away from wrong, the best of 100 is not.
  double min_time_s = 0.05;
  int64_t full_check_max_n = 4096;    // above: check on sampled query rows only
  int64_t sampled_rows = 256;
  // Specs (as written in `backends`) that run only up to this n (generated and real inputs):
  // the O(n²d) topk oracle would otherwise dominate the suite's time at n = 16384.
  std::map<std::string, int64_t> max_n;
};

// "quick" (<= 10 minutes on 2 cores) or "full" (about an hour); throws attnkit::Error otherwise.
Suite suite_by_name(const std::string& name);

// Splits "a,b,c" on commas at the top level, keeping spec strings whole: a new item starts at a
// comma followed by a backend name without '=' up to the next ':' or ',' (so
// "local:window=64,global=2,exact" is {"local:window=64,global=2", "exact"}).
std::vector<std::string> split_specs(const std::string& list);
std::vector<std::string> split_list(const std::string& list);

}  // namespace attnkit::cli
