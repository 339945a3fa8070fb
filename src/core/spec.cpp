#include "attnkit/spec.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "attnkit/error.hpp"

namespace attnkit {

namespace {

std::string trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && (s[a] == ' ' || s[a] == '\t')) ++a;
  while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) --b;
  return std::string(s.substr(a, b - a));
}

std::string valid_keys(const std::vector<ParamDef>& defs) {
  if (defs.empty()) return "none (this backend takes no parameters)";
  std::string s;
  for (const auto& d : defs) s += (s.empty() ? "" : ", ") + d.name;
  return s;
}

std::string format_number(double x, ParamType t) {
  if (t == ParamType::Int) return std::to_string(static_cast<int64_t>(x));
  std::ostringstream os;
  os.precision(9);
  os << x;
  return os.str();
}

// Parses `text` as the parameter's type and range; returns its canonical text.
std::string canonical_value(const std::string& backend, const ParamDef& d, const std::string& text) {
  const std::string where = backend + ": " + d.name;
  switch (d.type) {
    case ParamType::Int: {
      errno = 0;
      char* end = nullptr;
      const long long v = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || errno == ERANGE)
        detail::fail(where, "=", text, ": not an integer; expected an integer in [", format_number(d.min, d.type),
                     ", ", format_number(d.max, d.type), "]");
      if (v < d.min || v > d.max)
        detail::fail(where, "=", text, ": out of range; expected an integer in [", format_number(d.min, d.type),
                     ", ", format_number(d.max, d.type), "]");
      return std::to_string(v);
    }
    case ParamType::Float: {
      errno = 0;
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v))
        detail::fail(where, "=", text, ": not a finite number; expected a number in [", d.min, ", ", d.max, "]");
      if (v < d.min || v > d.max)
        detail::fail(where, "=", text, ": out of range; expected a number in [", d.min, ", ", d.max, "]");
      return format_number(v, d.type);
    }
    case ParamType::Bool:
      if (text == "1" || text == "true") return "1";
      if (text == "0" || text == "false") return "0";
      detail::fail(where, "=", text, ": not a boolean; expected 0, 1, true or false");
    case ParamType::String:
      if (text.find_first_of(",:=") != std::string::npos)
        detail::fail(where, "=", text, ": contains ',', ':' or '='; expected a plain string");
      return text;
  }
  detail::fail(where, ": unknown parameter type");
}

}  // namespace

ParsedSpec parse_spec(std::string_view spec) {
  ParsedSpec out;
  const size_t colon = spec.find(':');
  out.name = trim(spec.substr(0, colon));
  if (out.name.empty())
    detail::fail("spec '", std::string(spec), "': empty backend name; expected name[:key=value,...]");
  if (colon == std::string_view::npos) return out;
  std::string_view rest = spec.substr(colon + 1);
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos)
      detail::fail("spec '", std::string(spec), "': '", std::string(item), "' has no '='; expected key=value");
    std::string key = trim(item.substr(0, eq));
    std::string value = trim(item.substr(eq + 1));
    if (key.empty()) detail::fail("spec '", std::string(spec), "': empty key; expected key=value");
    for (const auto& [k, v] : out.pairs)
      if (k == key) detail::fail("spec '", std::string(spec), "': key '", key, "' given twice; expected once");
    out.pairs.emplace_back(std::move(key), std::move(value));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

Params::Params(std::string name, const std::vector<ParamDef>& defs,
               const std::vector<std::pair<std::string, std::string>>& given)
    : name_(std::move(name)), defs_(defs) {
  for (const auto& d : defs_)
    values_[d.name] = d.default_value.empty() ? std::string() : canonical_value(name_, d, d.default_value);
  for (const auto& [key, value] : given) {
    const ParamDef* def = nullptr;
    for (const auto& d : defs_)
      if (d.name == key) def = &d;
    if (!def) detail::fail(name_, ": unknown key '", key, "'; valid keys: ", valid_keys(defs_));
    values_[key] = canonical_value(name_, *def, value);
  }
}

const std::string& Params::raw(const std::string& key, ParamType t) const {
  for (const auto& d : defs_)
    if (d.name == key) {
      if (d.type != t) detail::fail(name_, ": parameter '", key, "' read with the wrong type");
      return values_.at(key);
    }
  detail::fail(name_, ": no parameter '", key, "'; valid keys: ", valid_keys(defs_));
}

int64_t Params::get_int(const std::string& key) const { return std::stoll(raw(key, ParamType::Int)); }
double Params::get_float(const std::string& key) const { return std::stod(raw(key, ParamType::Float)); }
bool Params::get_bool(const std::string& key) const { return raw(key, ParamType::Bool) == "1"; }
const std::string& Params::get_string(const std::string& key) const { return raw(key, ParamType::String); }

std::string Params::canonical() const {
  std::string s = name_;
  char sep = ':';
  for (const auto& d : defs_) {
    const std::string& v = values_.at(d.name);
    if (d.type == ParamType::String && v.empty()) continue;
    s += sep + d.name + "=" + v;
    sep = ',';
  }
  return s;
}

std::unique_ptr<Backend> make_from(const BackendInfo& info, const ParsedSpec& spec) {
  if (spec.name != info.name)
    detail::fail("spec name '", spec.name, "' does not match backend '", info.name, "'");
  return info.make(Params(info.name, info.params, spec.pairs));
}

}  // namespace attnkit
