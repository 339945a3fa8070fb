#include "sweep_record.hpp"

#include <cstdio>
#include <vector>

#include "json.hpp"

namespace attnkit::cli {

namespace {
std::string num(double x) {
  if (!std::isfinite(x)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}
std::string tri(int x) { return x < 0 ? "null" : (x ? "true" : "false"); }

using Field = std::pair<const char*, std::string>;
std::vector<Field> fields(const Record& r) {
  return {{"spec", json_string(r.spec)},
          {"label", json_string(r.label)},
          {"backend", json_string(r.backend)},
          {"family", json_string(r.family)},
          {"input", json_string(r.input)},
          {"n", std::to_string(r.n)},
          {"d", std::to_string(r.d)},
          {"heads", std::to_string(r.heads)},
          {"batch", std::to_string(r.batch)},
          {"causal", r.causal ? "true" : "false"},
          {"status", json_string(r.status)},
          {"ms_best", num(r.ms_best)},
          {"ms_median", num(r.ms_median)},
          {"spread", num(r.spread)},
          {"runs", std::to_string(r.runs)},
          {"gflops", num(r.gflops)},
          {"gflops_actual", num(r.gflops_actual)},
          {"sgemm_gflops", num(r.sgemm_gflops)},
          {"ratio_sgemm", num(r.ratio_sgemm)},
          {"speedup", num(r.speedup)},
          {"check", json_string(r.check)},
          {"max_abs", num(r.max_abs)},
          {"rel_fro", num(r.rel_fro)},
          {"mean_row_l2", num(r.mean_row_l2)},
          {"prob_l1", num(r.prob_l1)},
          {"bound_max", num(r.bound_max)},
          {"bound_holds", tri(r.bound_holds)},
          {"baseline_rel_fro", num(r.baseline_rel_fro)},
          {"beats_baseline", tri(r.beats_baseline)},
          {"peak_extra_mib", num(r.peak_extra_mib)}};
}
}  // namespace

void write_json_line(std::ostream& os, const Record& r) {
  os << "{";
  bool first = true;
  for (const auto& [k, v] : fields(r)) {
    os << (first ? "" : ", ") << "\"" << k << "\": " << v;
    first = false;
  }
  os << "}\n";
}

void write_csv_header(std::ostream& os) {
  bool first = true;
  for (const auto& f : fields(Record{})) {
    os << (first ? "" : ",") << f.first;
    first = false;
  }
  os << "\n";
}

void write_csv_line(std::ostream& os, const Record& r) {
  bool first = true;
  for (const auto& [k, v] : fields(r)) {
    os << (first ? "" : ",") << (v == "null" ? "" : v);
    first = false;
  }
  os << "\n";
}

}  // namespace attnkit::cli
