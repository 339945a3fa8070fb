#include "sweep_peers.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "args.hpp"
#include "attnkit/error.hpp"
#include "python_script.hpp"

namespace attnkit::cli {

std::vector<PeerResult> run_peers(const std::string& dir, const Tensor& q, const Tensor& k, const Tensor& v,
                                  bool causal, int threads, int repeat, double min_time_s) {
  const std::string script = find_script("peers.py", "ATTNKIT_PEERS", "sweep peers");
  const std::string prefix = dir + "/peers" + std::to_string(::getpid());
  save_tensor(prefix + "_q.npy", q, 4);
  save_tensor(prefix + "_k.npy", k, 4);
  save_tensor(prefix + "_v.npy", v, 4);
  std::vector<std::string> files{prefix + "_q.npy", prefix + "_k.npy", prefix + "_v.npy", prefix + "_peers.tsv"};
  auto cleanup = [&] {
    for (const auto& f : files) std::remove(f.c_str());
  };
  std::vector<PeerResult> out;
  try {
    std::vector<std::string> args{prefix, "--threads", std::to_string(threads), "--repeat", std::to_string(repeat),
                                  "--min-time", std::to_string(min_time_s)};
    if (causal) args.push_back("--causal");
    run_script(script, args, "sweep peers", "numpy (and torch for the torch row)");
    std::ifstream tsv(prefix + "_peers.tsv");
    if (!tsv) detail::fail("sweep peers: ", script, " wrote no ", prefix, "_peers.tsv; expected one line per peer");
    std::string line;
    while (std::getline(tsv, line)) {
      if (line.empty()) continue;
      std::vector<std::string> f;
      std::stringstream ss(line);
      std::string cell;
      while (std::getline(ss, cell, '\t')) f.push_back(cell);
      f.resize(6);
      PeerResult r;
      r.label = f[0];
      r.status = f[1];
      if (r.label.empty() || r.status.empty())
        detail::fail("sweep peers: line '", line, "' of the peers' results; expected label<TAB>status<TAB>...");
      if (r.status == "ok") {
        files.push_back(f[4]);
        auto ms = [&](const std::string& x) {
          char* end = nullptr;
          const double t = std::strtod(x.c_str(), &end);
          if (x.empty() || *end != '\0' || !(t > 0))
            detail::fail("sweep peers: time '", x, "' in line '", line, "'; expected milliseconds > 0");
          return t;
        };
        r.ms_best = ms(f[2]);
        r.ms_median = ms(f[3]);
        r.runs = std::strtoll(f[5].c_str(), nullptr, 10);
        if (r.runs < 1) detail::fail("sweep peers: runs '", f[5], "' in line '", line, "'; expected an integer >= 1");
        r.out = load_tensor("sweep peers", f[4]);
      }
      out.push_back(std::move(r));
    }
  } catch (...) {
    cleanup();
    throw;
  }
  cleanup();
  return out;
}

}  // namespace attnkit::cli
