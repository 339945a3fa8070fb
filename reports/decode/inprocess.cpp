// In-process decode comparison (reports/decode/README.md, "in-process"): several Decoders
// (spec@storage) over the same generated cache, their attends alternating round by round, each
// round preceded by one pass of the read-bandwidth probe; best of R rounds per decoder and thread
// count. Alternating in one process gives every configuration the same machine states, which
// separate CLI runs on a shared machine do not. Not built by meson; from the repository root after
// a release build:
//   g++ -O2 -std=c++20 -fopenmp -Iinclude -Ibuild reports/decode/inprocess.cpp -o /tmp/inprocess \
//     -Lbuild -Lbuild/src/core -lattnkit-decode -lattnkit-core -Wl,-rpath,$PWD/build:$PWD/build/src/core
//   /tmp/inprocess 65536 5 1,2 exact@f32 exact@bf16 exact@int8 pages:page=16,keep=8192@f32
// (args: N rounds threads-list spec@storage...; H = 32, G = 8, d = 128; NOPROBE=1 skips the probe)
#include <omp.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>
#include "attnkit/decode.hpp"
using namespace attnkit;
int main(int argc, char** argv) {
  long N = atol(argv[1]); int R = atoi(argv[2]); std::vector<int> Ts; { std::stringstream ss(argv[3]); std::string x; while (std::getline(ss, x, ',')) Ts.push_back(std::stoi(x)); }
  std::vector<std::pair<std::string, std::string>> specs;
  for (int i = 4; i < argc; ++i) { std::string a = argv[i]; auto at = a.find('@'); specs.push_back({a.substr(0, at), at == std::string::npos ? "f32" : a.substr(at + 1)}); }
  long H = 32, G = 8, d = 128;
  std::vector<std::unique_ptr<Decoder>> decs;
  for (auto& [sp, st] : specs) { DecodeConfig c; c.batch = 1; c.heads = H; c.kv_heads = G; c.d = d; c.d_v = d; c.capacity = N; c.storage = parse_kv_storage(st); decs.push_back(std::make_unique<Decoder>(sp, c)); }
  const long CH = 1024; Tensor k(1, G, CH, d), v(1, G, CH, d);
  std::mt19937 rng(1); std::normal_distribution<float> nd;
  for (long a = 0; a < N; a += CH) { for (long i = 0; i < k.numel(); ++i) { k.data()[i] = nd(rng); v.data()[i] = nd(rng); }
    long n = std::min(CH, N - a); ConstView kv = k.cview(), vv = v.cview(); kv.shape[2] = n; vv.shape[2] = n; for (auto& dd : decs) dd->append(kv, vv); }
  Tensor q(1, H, 1, d), out(1, H, 1, d); for (long i = 0; i < q.numel(); ++i) q.data()[i] = nd(rng);
  for (int T : Ts) {
    omp_set_num_threads(T);
    std::vector<double> best(decs.size(), 1e9); double bw = 0;
    for (int r = 0; r < R; ++r) {
      if (!getenv("NOPROBE")) bw = std::max(bw, read_bandwidth_gbps(0, 1));
      for (size_t i = 0; i < decs.size(); ++i) { auto t0 = std::chrono::steady_clock::now(); decs[i]->attend(q.cview(), out.view());
        best[i] = std::min(best[i], std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()); } }
    for (size_t i = 0; i < decs.size(); ++i) printf("T=%d %-28s %-5s best %8.3f ms  %6.2f GB/s  ratio %.3f  x%.2f vs first  (read %.2f)\n", T, specs[i].first.c_str(), specs[i].second.c_str(), best[i]*1e3, decs[i]->bytes_read()/best[i]/1e9, decs[i]->bytes_read()/best[i]/1e9/bw, best[0]/best[i], bw);
  }
}
