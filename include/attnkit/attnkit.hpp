#pragma once
// Umbrella header: the contract and every backend family this build contains.
#include "attnkit_config.hpp"
#include "attnkit/backend.hpp"
#include "attnkit/blas.hpp"
#include "attnkit/error.hpp"
#include "attnkit/inputs.hpp"
#include "attnkit/limits.hpp"
#include "attnkit/metrics.hpp"
#include "attnkit/npy.hpp"
#include "attnkit/problem.hpp"
#include "attnkit/registry.hpp"
#include "attnkit/simd.hpp"
#include "attnkit/spec.hpp"
#include "attnkit/tensor.hpp"
#include "attnkit_families.hpp"  // every backend family of this build (generated)
#if ATTNKIT_HAS_LAYER
#include "attnkit/mha.hpp"
#endif
