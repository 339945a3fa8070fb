#pragma once
// Umbrella header: the contract and every backend family this build contains.
#include "attnkit_config.hpp"
#include "attnkit/backend.hpp"
#include "attnkit/blas.hpp"
#include "attnkit/error.hpp"
#include "attnkit/inputs.hpp"
#include "attnkit/metrics.hpp"
#include "attnkit/npy.hpp"
#include "attnkit/problem.hpp"
#include "attnkit/registry.hpp"
#include "attnkit/simd.hpp"
#include "attnkit/spec.hpp"
#include "attnkit/tensor.hpp"
#if ATTNKIT_HAS_EXACT
#include "attnkit/exact.hpp"
#endif
#if ATTNKIT_HAS_LOCAL
#include "attnkit/local.hpp"
#endif
#if ATTNKIT_HAS_KERNELIZED
#include "attnkit/kernelized.hpp"
#endif
#if ATTNKIT_HAS_CLUSTERED
#include "attnkit/clustered.hpp"
#endif
#if ATTNKIT_HAS_LOWRANK
#include "attnkit/lowrank.hpp"
#endif
#if ATTNKIT_HAS_LAYER
#include "attnkit/mha.hpp"
#endif
