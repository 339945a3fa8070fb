#pragma once
// Limits that attnkit's programs (the `attnkit` command, the Python module) check their arguments
// against. Header-only constants; nothing in the libraries depends on them.

namespace attnkit {

// The most OpenMP threads a call may ask for (CLI --threads T, Python threads=T, or
// OMP_NUM_THREADS): far above any machine's core count, so a larger number is a mistake, and each
// thread allocates its own scratch.
inline constexpr int kMaxThreads = 4096;

}  // namespace attnkit
