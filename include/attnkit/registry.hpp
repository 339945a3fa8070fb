#pragma once
// The backends this build of attnkit contains, by spec string. Lives in the umbrella library
// `attnkit`: it knows at build time which family libraries were built (no static self-registration).
// A program that links only some family libraries uses their headers' constructors or *_info()
// functions instead.
#include <memory>
#include <string_view>
#include <vector>

#include "attnkit/spec.hpp"

namespace attnkit {

// Creates a backend from a spec string such as "exact" or "performer:features=256,seed=7".
// Throws attnkit::Error for an unknown name (listing the built backends), a family that was not
// built (naming its meson option), an unknown key or a bad value. Thread-safe.
std::unique_ptr<Backend> make_backend(std::string_view spec);

// Every backend of this build, in a stable order. Thread-safe.
const std::vector<BackendInfo>& list_backends();

}  // namespace attnkit
