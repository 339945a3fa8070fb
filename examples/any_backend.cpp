// A program that runs any backend of the build by its spec string, through the registry: it links
// attnkit (pkg-config attnkit brings the core and every family library of the build).
//
//   c++ -std=c++20 -O2 any_backend.cpp $(pkg-config --cflags --libs attnkit) -o any_backend
//   ./any_backend "local:window=64"     # prints the canonical spec and the error vs reference
#include <attnkit/attnkit.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  const char* spec = argc > 1 ? argv[1] : "exact";
  // 1 batch, 2 heads, 256 tokens, head dim 32, causal: the output against the fp64 reference.
  attnkit::Inputs in = attnkit::generate(attnkit::InputFamily::Gaussian, 1, 2, 256, 32, 3);
  attnkit::Tensor out(1, 2, 256, 32), ref(1, 2, 256, 32);
  attnkit::Problem p;
  p.q = in.q.view();
  p.k = in.k.view();
  p.v = in.v.view();
  p.mask.causal = true;
  try {
    const auto backend = attnkit::make_backend(spec);
    p.out = out.view();
    backend->forward(p);
    p.out = ref.view();
    attnkit::make_backend("reference")->forward(p);
    const attnkit::ErrorMetrics e = attnkit::compare(out.cview(), ref.cview());
    std::printf("%s: relative Frobenius error vs reference %.3g\n", backend->spec().c_str(), e.rel_fro);
  } catch (const attnkit::Error& e) {
    std::fprintf(stderr, "any_backend: %s\n", e.what());
    return 2;
  }
  return 0;
}
