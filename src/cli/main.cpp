// attnkit command line: list, run, gen, sweep, mha, weights, decode, ring.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "attnkit/blas.hpp"
#include "attnkit/error.hpp"
#include "attnkit/limits.hpp"
#include "attnkit_config.hpp"
#include "commands.hpp"

namespace {
const char* kUsage =
    "usage: attnkit COMMAND [ARGS]\n"
    "  list [--json]             backends with parameters, defaults and capabilities\n"
    "  run --backend SPEC --q Q.npy --k K.npy --v V.npy --out O.npy [--causal]\n"
    "      [--key-lengths L.npy] [--scale S] [--threads T] [--repeat R] [--check] [--json]\n"
    "  gen --n N --d D [--heads H] [--batch B] [--family gaussian|diffuse|peaky|local|clustered]\n"
    "      [--seed S] --prefix P\n"
    "  sweep [--suite quick|full] [--backends SPEC,SPEC...] [--families F,...] [--n N,...]\n"
    "      [--inputs DIR] [--out DIR] [--heads H] [--d D] [--repeat R] [--threads T] [--no-peers]\n"
    "      (defaults: --suite quick, --threads 2, --out results)\n"
    "  mha --x X.npy [--context C.npy] --heads H [--kv-heads G] --out Y.npy [--backend SPEC] [--causal]\n"
    "      [--key-lengths L.npy] [--threads T], weights in the native layout (y = x·W):\n"
    "      --wq [d_model,H·d] --wk [d_model,G·d] --wv [d_model,G·d_v] --wo [H·d_v,d_model]\n"
    "      [--bq [H·d]] [--bk [G·d]] [--bv [G·d_v]] [--bo [d_model]]\n"
    "      or in PyTorch nn.MultiheadAttention's state_dict layout (out x in):\n"
    "      --in-proj [3·d_model,d_model] [--in-proj-bias [3·d_model]] --out-proj [d_model,d_model]\n"
    "      [--out-proj-bias [d_model]]\n"
    "  decode --backend SPEC --steps S [--storage f32|bf16|int8] [--threads T] [--out O.npy] [--json] [--check]\n"
    "         [--probe-mib M]\n"
    "      --cache N [--heads H] [--kv-heads G] [--d D] [--batch B]   (generated: N cached, then S decoded)\n"
    "      or --q Q.npy --k K.npy --v V.npy [--key-lengths L.npy]      (last S positions decoded one by one)\n"
    "      SPEC: exact | local:window=W | pages:page=P,keep=K | performer[:...] | linear\n"
    "  weights --q Q.npy --k K.npy --out W.npy [--head h] [--batch b] [--backend SPEC] [--causal]\n"
    "      [--key-lengths L.npy] [--scale S] [--compare SPEC] [--png W.png [--tokens T.txt] [--log]]\n"
    "  ring --q Q.npy --k K.npy --v V.npy --out O.npy [--causal] [--layout contiguous|zigzag]\n"
    "      [--threads T] [--json] [--key-lengths L.npy]   under mpirun -np P (built with MPI)\n";

bool is_help(const std::string& a) { return a == "--help" || a == "-h"; }

// The usage lines of one command (its line of kUsage and the indented lines after it); empty for
// an unknown command.
std::string command_usage(const std::string& cmd) {
  std::string out, line;
  bool in = false;
  for (const char* c = kUsage; *c; ++c) {
    line += *c;
    if (*c != '\n') continue;
    if (line.rfind("  " + cmd + " ", 0) == 0) in = true;
    else if (in && line.rfind("      ", 0) != 0) in = false;
    if (in) out += line;
    line.clear();
  }
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  attnkit::reexec_with_fitting_blas_core(argv);
  if (argc < 2 || is_help(argv[1])) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  // --threads' range; OpenMP takes any OMP_NUM_THREADS, and far more threads than this crashed
  // the first parallel region (its team is started from the stack). Only where OpenMP's count is
  // used: sweep always sets its own, list and gen run no kernel, --threads replaces it.
  const bool own_count = cmd == "sweep" || cmd == "list" || cmd == "gen" ||
                         std::find(args.begin(), args.end(), "--threads") != args.end();
  if (!own_count && omp_get_max_threads() > attnkit::kMaxThreads) {
    std::fprintf(stderr, "attnkit %s: OMP_NUM_THREADS gives %d threads; expected at most %d (or pass --threads T)\n",
                 cmd.c_str(), omp_get_max_threads(), attnkit::kMaxThreads);
    return 2;
  }
  for (const std::string& a : args)
    if (is_help(a)) {
      const std::string usage = command_usage(cmd);
      if (usage.empty()) break;  // an unknown command: reported below
      std::printf("usage: attnkit COMMAND [ARGS]\n%s", usage.c_str());
      return 0;
    }
  try {
    if (cmd == "list") return attnkit::cli::cmd_list(args);
    if (cmd == "run") return attnkit::cli::cmd_run(args);
    if (cmd == "gen") return attnkit::cli::cmd_gen(args);
    if (cmd == "sweep") return attnkit::cli::cmd_sweep(args);
#if ATTNKIT_HAS_LAYER
    if (cmd == "mha") return attnkit::cli::cmd_mha(args);
#else
    if (cmd == "mha") throw attnkit::Error("this attnkit was built without the layer; expected meson option -Dlayer=enabled");
#endif
    if (cmd == "weights") return attnkit::cli::cmd_weights(args);
#if ATTNKIT_HAS_DECODE
    if (cmd == "decode") return attnkit::cli::cmd_decode(args);
#else
    if (cmd == "decode") throw attnkit::Error("this attnkit was built without decode; expected meson option -Ddecode=enabled");
#endif
#if ATTNKIT_HAS_RING
    if (cmd == "ring") return attnkit::cli::cmd_ring(args);
#else
    if (cmd == "ring")
      throw attnkit::Error("this attnkit was built without MPI, so the ring command was not built; expected MPI "
                           "(libopenmpi-dev, openmpi-bin) found by meson setup (option -Dmpi)");
#endif
    std::fprintf(stderr, "attnkit: unknown command '%s'; expected list, run, gen, sweep, mha, weights, decode or ring (see attnkit --help)\n", cmd.c_str());
    return 2;
  } catch (const attnkit::Error& e) {
    std::fprintf(stderr, "attnkit %s: %s\n", cmd.c_str(), e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "attnkit %s: out of memory\n", cmd.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attnkit %s: %s\n", cmd.c_str(), e.what());
    return 2;
  }
}
