#pragma once
// The compute precision of the backends that run on the shared tile engine (exact, local, pruned):
// spec parameter `precision=fp32|bf16|int8` (issue 17; docs/precision.md).
//   fp32  (default) today's float32 kernels, results unchanged bit for bit.
//   bf16  Q, K, V rounded to bfloat16 (round to nearest even); Q·Kᵀ and P·V as bf16 products with
//         fp32 accumulation; scale, max, exp and sums in fp32; the probabilities rounded to bf16.
//   int8  K minus its mean key, Q and K quantised symmetrically to int8 (one scale max|x|/127 per
//         query tile and per key tile), integer Q·Kᵀ, dequantised to fp32 scores; P·V as in bf16.
// Inputs and outputs stay float32; the conversion is done inside each forward call. A precision
// other than fp32 has no checked a-posteriori error bound (error_bound() returns nullopt) and no
// weights (capabilities().weights is false): its error is measured against `reference` instead.
// Header-only: every function here is inline and thread-safe.
#include <string>
#include <vector>

#include "attnkit/error.hpp"
#include "attnkit/spec.hpp"

namespace attnkit {

enum class ComputePrecision { fp32, bf16, int8 };

inline const char* precision_name(ComputePrecision p) {
  switch (p) {
    case ComputePrecision::fp32: return "fp32";
    case ComputePrecision::bf16: return "bf16";
    case ComputePrecision::int8: return "int8";
  }
  return "?";
}

// "fp32" | "bf16" | "int8"; anything else throws attnkit::Error naming `backend`'s parameter
// precision, the value and the expected ones.
inline ComputePrecision parse_precision(const std::string& backend, const std::string& value) {
  if (value == "fp32") return ComputePrecision::fp32;
  if (value == "bf16") return ComputePrecision::bf16;
  if (value == "int8") return ComputePrecision::int8;
  detail::fail(backend, ": precision=", value, "; expected fp32, bf16 or int8");
}

// The parameter's row of a backend's parameter table (default fp32).
inline ParamDef precision_param() {
  return {"precision", ParamType::String, "fp32", 0, 0,
          "compute precision: fp32, bf16 (bf16 products, fp32 sums) or int8 (int8 Q.K, bf16 P.V); docs/precision.md"};
}

// For a backend's spec(): its parameter table without the precision row when p is fp32, so that
// the canonical spec of an fp32 backend is the one it had before the parameter existed
// ("exact:block_q=0,block_k=0"), and "exact:precision=fp32" and "exact" print alike.
inline std::vector<ParamDef> spec_params(std::vector<ParamDef> defs, ComputePrecision p) {
  if (p == ComputePrecision::fp32)
    for (size_t i = 0; i < defs.size(); ++i)
      if (defs[i].name == "precision") {
        defs.erase(defs.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
  return defs;
}

}  // namespace attnkit
