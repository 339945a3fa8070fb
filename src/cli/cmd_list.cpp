#include <cstdio>
#include <string>

#include "args.hpp"
#include "attnkit/registry.hpp"
#include "attnkit/simd.hpp"
#include "commands.hpp"
#include "json.hpp"

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

// One JSON object: every backend name attnkit knows, built or not, with its family (meson option);
// built ones also with summary, capabilities and parameters. Scripts (tests/test_install.sh) read it.
void print_json() {
  std::printf("{\"precision_kernels\": %s, \"backends\": [", json_string(precision_path()).c_str());
  bool first = true;
  for (const BackendEntry& e : known_backends()) {
    std::printf("%s\n  {\"name\": %s, \"family\": %s, \"built\": %s", first ? "" : ",", json_string(e.name).c_str(),
                json_string(e.family).c_str(), e.built ? "true" : "false");
    first = false;
    for (const BackendInfo& b : list_backends()) {
      if (b.name != e.name) continue;
      const Capabilities& c = b.caps;
      std::printf(", \"summary\": %s, \"capabilities\": {\"causal\": %s, \"key_lengths\": %s, \"cross\": %s, "
                  "\"gqa\": %s, \"weights\": %s, \"causal_future_independent\": %s}, \"params\": [",
                  json_string(b.summary).c_str(), c.causal ? "true" : "false", c.key_lengths ? "true" : "false",
                  c.cross ? "true" : "false", c.gqa ? "true" : "false", c.weights ? "true" : "false",
                  c.causal_future_independent ? "true" : "false");
      for (size_t i = 0; i < b.params.size(); ++i) {
        const ParamDef& p = b.params[i];
        std::printf("%s{\"name\": %s, \"type\": \"%s\", \"default\": %s", i ? ", " : "", json_string(p.name).c_str(),
                    type_name(p.type), json_string(p.default_value).c_str());
        if (p.type == ParamType::Int || p.type == ParamType::Float) std::printf(", \"min\": %.17g, \"max\": %.17g", p.min, p.max);
        std::printf("}");
      }
      std::printf("]");
    }
    std::printf("}");
  }
  std::printf("\n]}\n");
}
}  // namespace

int cmd_list(const std::vector<std::string>& argv) {
  Args args(argv, {}, {"--json"});
  if (args.has("--json")) {
    print_json();
    return 0;
  }
  // The kernel set that precision=bf16|int8 (exact, local, pruned) runs on here (docs/precision.md).
  std::printf("precision kernels: %s (precision=bf16|int8; ATTNKIT_SIMD=amx|avx512bf16 force a fast set)\n",
              precision_path().c_str());
  for (const BackendInfo& b : list_backends()) {
    std::printf("%s\n    %s\n", b.name.c_str(), b.summary.c_str());
    const Capabilities& c = b.caps;
    std::printf("    capabilities: causal=%d key_lengths=%d cross=%d gqa=%d weights=%d causal_future_independent=%d\n",
                c.causal, c.key_lengths, c.cross, c.gqa, c.weights, c.causal_future_independent);
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
