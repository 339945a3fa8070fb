// The registry of the umbrella library: knows from the generated config header which family
// libraries this build contains.
#include "attnkit/registry.hpp"

#include "attnkit/error.hpp"
#include "attnkit_config.hpp"
#if ATTNKIT_HAS_EXACT
#include "attnkit/exact.hpp"
#endif
// registry: family includes (one block per family)
#if ATTNKIT_HAS_LOCAL
#include "attnkit/local.hpp"
#endif
#if ATTNKIT_HAS_KERNELIZED
#include "attnkit/kernelized.hpp"
#endif
#if ATTNKIT_HAS_CLUSTERED
#include "attnkit/clustered.hpp"
#endif
#if ATTNKIT_HAS_ADAPTIVE
#include "attnkit/adaptive.hpp"
#endif

namespace attnkit {

namespace {

struct Family {
  const char* backend;
  const char* option;
  bool built;
};

// Every backend name attnkit knows, and the meson option that builds it.
const Family kFamilies[] = {
    {"reference", "exact", ATTNKIT_HAS_EXACT},   {"exact", "exact", ATTNKIT_HAS_EXACT},
    {"local", "local", ATTNKIT_HAS_LOCAL},       {"performer", "kernelized", ATTNKIT_HAS_KERNELIZED},
    {"linear", "kernelized", ATTNKIT_HAS_KERNELIZED}, {"clustered", "clustered", ATTNKIT_HAS_CLUSTERED},
    {"topk", "adaptive", ATTNKIT_HAS_ADAPTIVE},       {"pruned", "adaptive", ATTNKIT_HAS_ADAPTIVE},
    {"lsh", "adaptive", ATTNKIT_HAS_ADAPTIVE},
};

std::vector<BackendInfo> build_list() {
  std::vector<BackendInfo> v;
#if ATTNKIT_HAS_EXACT
  v.push_back(reference_info());
  v.push_back(exact_info());
#endif
#if ATTNKIT_HAS_LOCAL
  v.push_back(local_info());
#endif
#if ATTNKIT_HAS_KERNELIZED
  v.push_back(performer_info());
  v.push_back(linear_info());
#endif
#if ATTNKIT_HAS_CLUSTERED
  v.push_back(clustered_info());
#endif
#if ATTNKIT_HAS_ADAPTIVE
  v.push_back(topk_info());
  v.push_back(pruned_info());
  v.push_back(lsh_info());
#endif
  return v;
}

}  // namespace

const std::vector<BackendInfo>& list_backends() {
  static const std::vector<BackendInfo> list = build_list();
  return list;
}

std::unique_ptr<Backend> make_backend(std::string_view spec) {
  const ParsedSpec ps = parse_spec(spec);
  for (const BackendInfo& info : list_backends())
    if (info.name == ps.name) return make_from(info, ps);
  for (const Family& f : kFamilies)
    if (!f.built && ps.name == f.backend)
      detail::fail("backend '", ps.name, "' was not built; reconfigure with -D", f.option, "=enabled");
  std::string names;
  for (const BackendInfo& info : list_backends()) names += (names.empty() ? "" : ", ") + info.name;
  detail::fail("backend '", ps.name, "': unknown; expected one of ", names);
}

}  // namespace attnkit
