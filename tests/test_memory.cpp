// n = 65536 for every backend under an address-space limit that n² floats (16 GiB) would exceed:
// no backend may allocate in proportion to n² (reference, being the oracle, excepted: it is O(n)
// per row but far too slow at this size). Its own executable: the limit must not bind other tests.
#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "attnkit/attnkit.hpp"

int main() {
#if defined(__SANITIZE_ADDRESS__)
  std::puts("memory: 0 passed, 0 failed (skipped: AddressSanitizer reserves terabytes of address space)");
  return 77;  // meson: skipped
#else
  const int64_t n = 65536, d = 64;
  attnkit::Inputs in = attnkit::generate(attnkit::InputFamily::Gaussian, 1, 1, n, d, 1);
  attnkit::Tensor out(1, 1, n, d);
  // 4 GiB of address space in all: inputs + output are 64 MiB, the libraries and thread stacks a
  // few hundred MiB; an n x n float matrix alone would need 16 GiB.
  rlimit lim{std::size_t{4} << 30, std::size_t{4} << 30};
  if (setrlimit(RLIMIT_AS, &lim) != 0) {
    std::perror("setrlimit");
    return 1;
  }
  int pass = 0, fail = 0;
  for (const attnkit::BackendInfo& info : attnkit::list_backends()) {
    if (info.name == "reference") continue;
    for (bool causal : {false, true}) {
      auto b = attnkit::make_backend(info.name);
      if (causal && !b->capabilities().causal) continue;
      attnkit::Problem p{in.q.view(), in.k.view(), in.v.view(), out.view(), {}, {}};
      p.mask.causal = causal;
      try {
        b->forward(p);
        bool finite = true;
        for (int64_t i = 0; i < out.numel(); i += 997) finite &= std::isfinite(out.data()[i]);
        std::printf("%s %s n=%lld: ok%s\n", b->spec().c_str(), causal ? "causal" : "", (long long)n,
                    finite ? "" : " but non-finite output");
        finite ? ++pass : ++fail;
      } catch (const std::exception& e) {
        std::printf("%s %s n=%lld: FAILED: %s\n", b->spec().c_str(), causal ? "causal" : "", (long long)n, e.what());
        ++fail;
      }
    }
  }
  std::printf("memory: %d passed, %d failed\n", pass, fail);
  return fail ? 1 : 0;
#endif
}
