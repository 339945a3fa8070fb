#include <cstdio>

#include "args.hpp"
#include "attnkit/registry.hpp"
#include "commands.hpp"

namespace attnkit::cli {

namespace {
const char* type_name(ParamType t) {
  switch (t) {
    case ParamType::Int: return "int";
    case ParamType::Float: return "float";
    case ParamType::Bool: return "bool";
    case ParamType::String: return "string";
  }
  return "?";
}
}  // namespace

int cmd_list(const std::vector<std::string>& argv) {
  Args args(argv, {}, {});
  for (const BackendInfo& b : list_backends()) {
    std::printf("%s\n    %s\n", b.name.c_str(), b.summary.c_str());
    const Capabilities& c = b.caps;
    std::printf("    capabilities: causal=%d key_lengths=%d cross=%d gqa=%d weights=%d\n", c.causal, c.key_lengths,
                c.cross, c.gqa, c.weights);
    for (const ParamDef& p : b.params) {
      std::printf("    %-12s %-6s default=%s", p.name.c_str(), type_name(p.type),
                  p.default_value.empty() ? "(none)" : p.default_value.c_str());
      if (p.type == ParamType::Int)
        std::printf(" range=[%lld, %lld]", static_cast<long long>(p.min), static_cast<long long>(p.max));
      else if (p.type == ParamType::Float)
        std::printf(" range=[%g, %g]", p.min, p.max);
      std::printf("  %s\n", p.help.c_str());
    }
  }
  return 0;
}

}  // namespace attnkit::cli
