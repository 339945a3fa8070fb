#pragma once
// The one JSON string escaper of the command line (list --json, run/decode --json, the sweep's
// records and meta): spec strings may hold any character (performer's projection= path, say).
#include <cstdio>
#include <string>

namespace attnkit::cli {

// `s` as a JSON string literal, quotes included: '"' and '\' escaped, control characters as \u00XX.
inline std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      o += buf;
    } else {
      o += c;
    }
  }
  return o + "\"";
}

}  // namespace attnkit::cli
