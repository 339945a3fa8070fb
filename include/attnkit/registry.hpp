#pragma once
// The backends this build of attnkit contains, by spec string. Lives in the umbrella library
// `attnkit`: its table is generated at build time from the family list of the top-level
// meson.build (no static self-registration). A program that links only some family libraries
// uses their headers' constructors or *_info() functions instead.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "attnkit/spec.hpp"

namespace attnkit {

// Creates a backend from a spec string such as "exact" or "performer:features=256,seed=7".
// Throws attnkit::Error for an unknown name (listing the built backends), a family that was not
// built (naming its meson option: "was not built; reconfigure with -D<family>=enabled"), an
// unknown key or a bad value. Thread-safe.
std::unique_ptr<Backend> make_backend(std::string_view spec);

// Every backend of this build, in a stable order (the family list's). Thread-safe.
const std::vector<BackendInfo>& list_backends();

// Every backend name attnkit knows, built in this build or not, with the family (meson feature
// option) that provides it. Thread-safe.
struct BackendEntry {
  std::string name;
  std::string family;
  bool built = false;
};
const std::vector<BackendEntry>& known_backends();

// Whether make_backend can create backend `name` (a bare name, not a spec string). Never throws.
enum class BackendStatus { Built, NotBuilt, Unknown };
BackendStatus backend_status(std::string_view name);

}  // namespace attnkit
