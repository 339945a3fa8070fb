// A program that embeds only sliding-window attention: it links attnkit-local (and, through
// pkg-config, attnkit-core) and nothing else of attnkit.
//
//   c++ -std=c++20 -O2 local_only.cpp $(pkg-config --cflags --libs attnkit-local) -o local_only
#include <attnkit/error.hpp>
#include <attnkit/inputs.hpp>
#include <attnkit/local.hpp>

#include <cmath>
#include <cstdio>

int main() {
  // 2 heads, 1024 tokens, head dim 64, causal sliding window of 128 keys plus 4 global tokens.
  attnkit::Inputs in = attnkit::generate(attnkit::InputFamily::Local, 1, 2, 1024, 64, 7);
  attnkit::Tensor out(1, 2, 1024, 64);
  attnkit::Problem p;
  p.q = in.q.view();
  p.k = in.k.view();
  p.v = in.v.view();
  p.out = out.view();
  p.mask.causal = true;

  attnkit::LocalOptions opt;
  opt.window = 128;
  opt.global = 4;
  const attnkit::LocalBackend local(opt);
  try {
    local.forward(p);
  } catch (const attnkit::Error& e) {
    std::fprintf(stderr, "local_only: %s\n", e.what());
    return 2;
  }
  double sum = 0;
  for (int64_t i = 0; i < out.numel(); ++i) sum += std::fabs(out.data()[i]);
  std::printf("%s: mean |out| = %.6f over %lld values\n", local.spec().c_str(), sum / out.numel(),
              static_cast<long long>(out.numel()));
  return 0;
}
