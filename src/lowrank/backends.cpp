// The two backends of the family: options, spec strings, capabilities and registry entries.
#include "attnkit/error.hpp"
#include "attnkit/lowrank.hpp"

namespace attnkit {

namespace {

std::vector<ParamDef> nystrom_params() {
  return {{"landmarks", ParamType::Int, "64", 1, 65536, "landmarks M: segment means of the queries and of the keys"},
          {"iterations", ParamType::Int, "6", 0, 100, "iterations of the pseudo-inverse of the landmark kernel"}};
}

std::vector<ParamDef> linformer_params() {
  return {{"k", ParamType::Int, "256", 1, 65536, "projected length K of the keys and values"},
          {"seed", ParamType::Int, "0", 0, 2147483647, "seed of the Gaussian projection E"}};
}

Params nystrom_resolved(const NystromOptions& o) {
  return Params("nystrom", nystrom_params(),
                {{"landmarks", std::to_string(o.landmarks)}, {"iterations", std::to_string(o.iterations)}});
}

Params linformer_resolved(const LinformerOptions& o) {
  return Params("linformer", linformer_params(), {{"k", std::to_string(o.k)}, {"seed", std::to_string(o.seed)}});
}

// Neither has a causal form: landmarks and E pool future keys into every row.
constexpr Capabilities kCaps{.causal = false, .key_lengths = true, .cross = true, .gqa = true, .weights = true};

}  // namespace

// The constructors validate through the same definitions the spec strings use.
NystromBackend::NystromBackend(NystromOptions o) : opt_(o) { nystrom_resolved(o); }

std::string NystromBackend::spec() const { return nystrom_resolved(opt_).canonical(); }

Capabilities NystromBackend::capabilities() const { return kCaps; }

LinformerBackend::LinformerBackend(LinformerOptions o) : opt_(o) { linformer_resolved(o); }

std::string LinformerBackend::spec() const { return linformer_resolved(opt_).canonical(); }

Capabilities LinformerBackend::capabilities() const { return kCaps; }

BackendInfo nystrom_info() {
  return {"nystrom",
          "Nystromformer (Xiong et al. 2021): segment-mean landmarks, iterative pseudo-inverse, O(n M d); "
          "non-causal",
          nystrom_params(), kCaps, [](const Params& pr) {
            return std::make_unique<NystromBackend>(NystromOptions{pr.get_int("landmarks"), pr.get_int("iterations")});
          }};
}

BackendInfo linformer_info() {
  return {"linformer",
          "Linformer (Wang et al. 2020) with a random Gaussian shared projection of keys and values (untrained), "
          "O(n K d); non-causal",
          linformer_params(), kCaps, [](const Params& pr) {
            return std::make_unique<LinformerBackend>(LinformerOptions{pr.get_int("k"), pr.get_int("seed")});
          }};
}

}  // namespace attnkit
