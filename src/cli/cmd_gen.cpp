#include <cstdio>

#include "args.hpp"
#include "attnkit/inputs.hpp"
#include "attnkit/npy.hpp"
#include "commands.hpp"

namespace attnkit::cli {

int cmd_gen(const std::vector<std::string>& argv) {
  Args args(argv, {"--n", "--d", "--heads", "--batch", "--family", "--seed", "--prefix"}, {});
  const int64_t n = args.integer("--n", -1, 1, int64_t{1} << 24);
  const int64_t d = args.integer("--d", -1, 1, 4096);
  if (!args.has("--n")) args.str("--n");
  if (!args.has("--d")) args.str("--d");
  const int64_t h = args.integer("--heads", 1, 1, 1024);
  const int64_t b = args.integer("--batch", 1, 1, 1024);
  const int64_t seed = args.integer("--seed", 0, 0, int64_t{1} << 62);
  const InputFamily f = parse_input_family(args.str("--family", "gaussian"));
  const std::string prefix = args.str("--prefix");
  Inputs in = generate(f, b, h, n, d, static_cast<uint64_t>(seed));
  const std::vector<int64_t> shape{b, h, n, d};
  write_npy(prefix + "_q.npy", in.q.data(), shape);
  write_npy(prefix + "_k.npy", in.k.data(), shape);
  write_npy(prefix + "_v.npy", in.v.data(), shape);
  std::printf("wrote %s_{q,k,v}.npy: [%lld, %lld, %lld, %lld] float32, family %s, seed %lld\n", prefix.c_str(),
              static_cast<long long>(b), static_cast<long long>(h), static_cast<long long>(n),
              static_cast<long long>(d), input_family_name(f).c_str(), static_cast<long long>(seed));
  return 0;
}

}  // namespace attnkit::cli
