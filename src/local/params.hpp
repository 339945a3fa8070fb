#pragma once
// Internal: local's options, written once. LocalPattern's constructor checks each option's range
// against this table (the rules between options are its own), LocalBackend::spec() prints the
// options through it and local_info() lists it.
#include <vector>

#include "attnkit/local.hpp"
#include "attnkit/spec.hpp"

namespace attnkit::local {

// Name, type, default, range and help of every option (pattern.cpp).
std::vector<ParamDef> local_params();
// The options checked against local_params() (attnkit::Error naming the option and its range);
// canonical() is the spec string.
Params local_values(const LocalOptions& o);

}  // namespace attnkit::local
