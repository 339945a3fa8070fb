// attnkit command line: list, run, gen.
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "attnkit/blas.hpp"
#include "attnkit/error.hpp"
#include "commands.hpp"

namespace {
const char* kUsage =
    "usage: attnkit COMMAND [ARGS]\n"
    "  list                      backends with parameters, defaults and capabilities\n"
    "  run --backend SPEC --q Q.npy --k K.npy --v V.npy --out O.npy [--causal]\n"
    "      [--key-lengths L.npy] [--scale S] [--threads T] [--repeat R] [--check] [--json]\n"
    "  gen --n N --d D [--heads H] [--batch B] [--family gaussian|diffuse|peaky|local|clustered]\n"
    "      [--seed S] --prefix P\n"
    "  sweep --suite quick|full [--backends SPEC,SPEC...] [--families F,...] [--n N,...]\n"
    "      [--inputs DIR] [--out DIR] [--heads H] [--d D] [--repeat R] [--threads T]\n";
}

int main(int argc, char** argv) {
  attnkit::reexec_with_fitting_blas_core(argv);
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  try {
    if (cmd == "list") return attnkit::cli::cmd_list(args);
    if (cmd == "run") return attnkit::cli::cmd_run(args);
    if (cmd == "gen") return attnkit::cli::cmd_gen(args);
    if (cmd == "sweep") return attnkit::cli::cmd_sweep(args);
    std::fprintf(stderr, "attnkit: unknown command '%s'; expected list, run, gen or sweep (see attnkit --help)\n", cmd.c_str());
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
