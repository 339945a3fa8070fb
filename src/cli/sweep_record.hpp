#pragma once
// One result of a sweep, and its JSON-lines / CSV forms.
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>

namespace attnkit::cli {

struct Record {
  std::string spec, label, backend, family, input, status = "ok", check;
  int64_t n = 0, d = 0, heads = 0, batch = 1;
  int64_t runs = 0;  // timed runs (repeat, or more until min_time_s)
  bool causal = false;
  double ms_best = NAN, ms_median = NAN, gflops = NAN, gflops_actual = NAN, sgemm_gflops = NAN,
         ratio_sgemm = NAN, speedup = NAN, max_abs = NAN, rel_fro = NAN, mean_row_l2 = NAN, prob_l1 = NAN,
         bound_max = NAN, baseline_rel_fro = NAN, peak_extra_mib = NAN,
         spread = NAN;  // ms_median / ms_best: above 1.25 the report marks the case noisy
  int bound_holds = -1;     // 1 yes, 0 no, -1 no bound
  int beats_baseline = -1;  // 1 yes, 0 no, -1 not measured
};

void write_json_line(std::ostream& os, const Record& r);
void write_csv_header(std::ostream& os);
void write_csv_line(std::ostream& os, const Record& r);

}  // namespace attnkit::cli
