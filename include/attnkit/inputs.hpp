#pragma once
// Generated input families for tests, benchmarks and the sweep (../shared/DESIGN.md §5).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "attnkit/tensor.hpp"

namespace attnkit {

// gaussian: q,k,v ~ N(0,1).  diffuse: q,k ~ N(0, 0.25).  peaky: gaussian with q,k scaled by 2.
// local: keys correlated with nearby positions (a smooth random walk per head is added to both q
//        and k, so attention mass concentrates near the diagonal).
// clustered: queries drawn around 8 centres per head (small spread), keys ~ N(0,1).
enum class InputFamily { Gaussian, Diffuse, Peaky, Local, Clustered };

// Thread-safety: every function here is thread-safe (no shared mutable state).
InputFamily parse_input_family(std::string_view name);  // throws attnkit::Error listing the valid names
// The family's name as parse_input_family reads it. Throws std::out_of_range only for a value that
// is not an enumerator of InputFamily.
std::string input_family_name(InputFamily f);
const std::vector<std::string>& input_family_names();  // in enumerator order; never throws

struct Inputs {
  Tensor q, k, v;  // [batch, heads, n, d] each
};

// Deterministic for a given seed. Throws attnkit::Error for sizes < 1.
Inputs generate(InputFamily f, int64_t batch, int64_t heads, int64_t n, int64_t d, uint64_t seed);

}  // namespace attnkit
