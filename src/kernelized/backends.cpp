// The two backends of the family: their options, spec strings and registry entries.
#include "attnkit/error.hpp"
#include "attnkit/kernelized.hpp"
#include "feature_map.hpp"

namespace attnkit {

namespace {

// Each backend's options, written once (as a table): its constructor checks them against it, spec()
// prints them through it, *_info() lists it.
ParamDef chunk_param() { return {"chunk", ParamType::Int, "0", 0, 4096, "rows per causal chunk (0 = auto)"}; }

std::vector<ParamDef> performer_params() {
  return {{"features", ParamType::Int, "256", 1, 65536, "number of random features m"},
          {"orthogonal", ParamType::Bool, "1", 0, 0, "orthogonal blocks of rows (Gram-Schmidt), else iid rows"},
          {"regularized", ParamType::Bool, "0", 0, 0, "rows scaled to norm sqrt(d) instead of chi(d) (biased)"},
          {"redraw", ParamType::Bool, "0", 0, 0, "a different W per (batch, kv head), drawn from seed"},
          {"seed", ParamType::Int, "0", 0, 2147483647, "seed of the projection draw"},
          chunk_param(),
          {"projection", ParamType::String, "", 0, 0, "float32 .npy [features, d]: use this W instead of drawing"}};
}

std::vector<ParamDef> linear_params() { return {chunk_param()}; }

std::vector<std::pair<std::string, std::string>> performer_pairs(const PerformerOptions& o) {
  std::vector<std::pair<std::string, std::string>> v = {
      {"features", std::to_string(o.features)}, {"orthogonal", o.orthogonal ? "1" : "0"},
      {"regularized", o.regularized ? "1" : "0"}, {"redraw", o.redraw ? "1" : "0"},
      {"seed", std::to_string(o.seed)},         {"chunk", std::to_string(o.chunk)}};
  if (!o.projection.empty()) v.emplace_back("projection", o.projection);
  return v;
}

Params linear_values(const LinearOptions& o) {
  return Params("linear", linear_params(), {{"chunk", std::to_string(o.chunk)}});
}

// Validates the options through the same definitions the spec strings use.
const PerformerOptions& checked(const PerformerOptions& o) {
  Params("performer", performer_params(), performer_pairs(o));
  return o;
}
const LinearOptions& checked(const LinearOptions& o) {
  linear_values(o);
  return o;
}

}  // namespace

PerformerBackend::PerformerBackend(PerformerOptions o)
    : KernelizedBackend(kern::FeatureMap::favor(checked(o)), o.chunk), opt_(std::move(o)) {}

std::string PerformerBackend::spec() const {
  return Params("performer", performer_params(), performer_pairs(opt_)).canonical();
}

LinearBackend::LinearBackend(LinearOptions o) : KernelizedBackend(kern::FeatureMap::elu1(), checked(o).chunk) {}

std::string LinearBackend::spec() const { return linear_values(LinearOptions{chunk()}).canonical(); }

BackendInfo performer_info() {
  return {"performer",
          "FAVOR+ positive orthogonal random features (Performer), O(n m d), unbiased estimate of softmax",
          performer_params(),
          KernelizedBackend::kCapabilities,
          [](const Params& pr) {
            PerformerOptions o;
            o.features = pr.get_int("features");
            o.orthogonal = pr.get_bool("orthogonal");
            o.regularized = pr.get_bool("regularized");
            o.redraw = pr.get_bool("redraw");
            o.seed = pr.get_int("seed");
            o.chunk = pr.get_int("chunk");
            o.projection = pr.get_string("projection");
            return std::make_unique<PerformerBackend>(o);
          }};
}

BackendInfo linear_info() {
  return {"linear", "linear attention with the elu(x)+1 feature map (Katharopoulos et al. 2020), O(n d^2)",
          linear_params(),
          KernelizedBackend::kCapabilities,
          [](const Params& pr) { return std::make_unique<LinearBackend>(LinearOptions{pr.get_int("chunk")}); }};
}

}  // namespace attnkit
