#pragma once
// Spec strings: name[:key=value[,key=value]...], e.g. "local:window=256,global=16".
// Thread-safety: no shared state; parse_spec, make_from and the const members of Params may be
// called concurrently (the registered backends' factories only construct).
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "attnkit/backend.hpp"

namespace attnkit {

enum class ParamType { Int, Float, Bool, String };

// One typed parameter of a backend: its default and (for numbers) its inclusive range.
struct ParamDef {
  std::string name;
  ParamType type = ParamType::Int;
  std::string default_value;  // canonical text; "" for an optional string
  double min = 0, max = 0;    // inclusive range for Int/Float
  std::string help;
};

// A spec string split into its name and key=value pairs, in the order written.
struct ParsedSpec {
  std::string name;
  std::vector<std::pair<std::string, std::string>> pairs;
};

// Splits a spec string. Spaces and tabs around the name, each key and each value are trimmed
// (" exact : block_q = 64 " is "exact:block_q=64"); values are not typed here. Throws
// attnkit::Error on an empty name, an empty key, a pair without '=' (including a trailing ':' or
// ','), or a key given twice.
ParsedSpec parse_spec(std::string_view spec);

// Parameters resolved against their definitions: every key known, every value typed and in range,
// defaults filled in. The constructor throws attnkit::Error for an unknown key (listing the valid
// keys), or a value (given or default) that does not parse as its type or lies outside its range
// (naming the key, the value and the expected type / range). A String value may not contain ',',
// ':' or '='; a Bool is 0, 1, true or false.
class Params {
 public:
  Params(std::string name, const std::vector<ParamDef>& defs,
         const std::vector<std::pair<std::string, std::string>>& given);
  // Typed reads. Throw attnkit::Error for a key not among the definitions (listing the valid keys)
  // or a read with a type other than the key's ParamType.
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;
  // "name:k1=v1,k2=v2" with every parameter in definition order (optional strings left out when
  // empty); equal specs give equal strings.
  std::string canonical() const;

 private:
  const std::string& raw(const std::string& key, ParamType t) const;
  std::string name_;
  std::vector<ParamDef> defs_;
  std::map<std::string, std::string> values_;  // canonical text per key
};

// A backend kind: its name, parameters, capabilities and factory.
struct BackendInfo {
  std::string name;
  std::string summary;
  std::vector<ParamDef> params;
  Capabilities caps;  // the capabilities with default parameters
  std::function<std::unique_ptr<Backend>(const Params&)> make;
};

// Creates a backend of `info` from a parsed spec. Throws attnkit::Error when spec.name is not
// info.name, what Params' constructor throws for spec.pairs, and what info.make throws (the
// backend constructor's own checks of its options).
std::unique_ptr<Backend> make_from(const BackendInfo& info, const ParsedSpec& spec);

}  // namespace attnkit
