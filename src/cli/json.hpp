#pragma once
// The one JSON string escaper of the command line (list --json, run/decode --json, the sweep's
// records and meta): spec strings may hold any character (performer's projection= path, say).
#include <cstddef>
#include <cstdio>
#include <string>

namespace attnkit::cli {

// Length of the well-formed UTF-8 sequence starting at s[i] (2 to 4 bytes; RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF), or 0 if there is none. s[i] is >= 0x80.
inline size_t utf8_sequence_length(const std::string& s, size_t i) {
  const auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b = at(i);
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // the allowed range of the second byte
  if (b >= 0xc2 && b <= 0xdf) {
    n = 2;
  } else if (b >= 0xe0 && b <= 0xef) {
    n = 3;
    if (b == 0xe0) lo = 0xa0;  // overlong below
    if (b == 0xed) hi = 0x9f;  // UTF-16 surrogates above
  } else if (b >= 0xf0 && b <= 0xf4) {
    n = 4;
    if (b == 0xf0) lo = 0x90;  // overlong below
    if (b == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size() || at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (at(i + k) < 0x80 || at(i + k) > 0xbf) return 0;
  return n;
}

// `s` as a JSON string literal, quotes included: '"' and '\' escaped, control characters as
// \u00XX, well-formed UTF-8 as it is, and each byte that does not begin one (a Latin-1 file name,
// say) as \ufffd, the replacement character: the output is valid JSON whatever the bytes (strict
// parsers reject invalid UTF-8), at the cost of not telling such bytes apart.
inline std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (size_t i = 0; i < s.size();) {
    const auto u = static_cast<unsigned char>(s[i]);
    if (u >= 0x80) {
      const size_t n = utf8_sequence_length(s, i);
      if (n == 0) {
        o += "\\ufffd";
        ++i;
      } else {
        o.append(s, i, n);
        i += n;
      }
      continue;
    }
    if (u == '"' || u == '\\') {
      o += '\\';
      o += static_cast<char>(u);
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      o += buf;
    } else {
      o += static_cast<char>(u);
    }
    ++i;
  }
  return o + "\"";
}

}  // namespace attnkit::cli
