// attnkit sweep: every (input × backend setting) checked against reference, then timed.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include "../core/numerics.hpp"
#include "args.hpp"
#include "attnkit/attnkit.hpp"
#include "attnkit/limits.hpp"
#include "attnkit_config.hpp"
#include "commands.hpp"
#include "json.hpp"
#include "sweep_machine.hpp"
#include "sweep_peers.hpp"
#include "sweep_record.hpp"
#include "sweep_suite.hpp"

namespace attnkit::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// One input problem of the sweep with its reference answers, shared by every backend.
struct Input {
  std::string family, name;  // family: generated family or "trained"; name: file prefix
  bool causal = false;
  Tensor q, k, v;
  Problem p;
  std::vector<int64_t> rows;  // checked rows (all, or a fixed sample)
  std::vector<float> ref;     // reference output of `rows`, [B,H,rows,d_v]
  std::vector<float> ref_w;   // reference probability rows `rows` of (b=0, h=0), [rows, n_k]
  double baseline_rel = NAN;
  std::vector<double> vmax;   // per (batch, kv head): max_j ||v_j||_2
  Input(std::string fam, std::string nm, bool c, Tensor q_, Tensor k_, Tensor v_)
      : family(std::move(fam)), name(std::move(nm)), causal(c), q(std::move(q_)), k(std::move(k_)), v(std::move(v_)) {}
};

// The checked rows of out, gathered as [B,H,rows,d_v].
std::vector<float> gather(ConstView out, const std::vector<int64_t>& rows) {
  std::vector<float> g;
  g.reserve(static_cast<size_t>(out.shape[0] * out.shape[1]) * rows.size() * static_cast<size_t>(out.shape[3]));
  for (int64_t b = 0; b < out.shape[0]; ++b)
    for (int64_t h = 0; h < out.shape[1]; ++h)
      for (int64_t i : rows) g.insert(g.end(), out.row(b, h, i), out.row(b, h, i) + out.shape[3]);
  return g;
}

ConstView as_view(const std::vector<float>& x, const Input& in) {
  const Shape d = in.p.dims();
  return ConstView::bhnd(x.data(), d.batch, d.heads, static_cast<int64_t>(in.rows.size()), d.d_v);
}

void prepare(Input& in, const Suite& s, Tensor& out) {
  in.p.q = in.q.view();
  in.p.k = in.k.view();
  in.p.v = in.v.view();
  in.p.out = out.view();
  in.p.mask.causal = in.causal;
  const Shape d = in.p.validate();
  in.rows.clear();
  if (d.n_q <= s.full_check_max_n) {
    for (int64_t i = 0; i < d.n_q; ++i) in.rows.push_back(i);
  } else {
    for (int64_t t = 0; t < s.sampled_rows; ++t) in.rows.push_back(t * (d.n_q - 1) / (s.sampled_rows - 1));
  }
  in.ref.assign(static_cast<size_t>(d.batch * d.heads) * in.rows.size() * static_cast<size_t>(d.d_v), 0.0f);
  ReferenceBackend().forward_rows(in.p, in.rows, in.ref.data());
  // The mean(V) row is the `uniform` backend; a build without that family computes the same
  // numbers with the metrics module's mean_value_baseline (which uniform's forward runs).
  Tensor base(d.batch, d.heads, d.n_q, d.d_v);
  if (backend_status("uniform") == BackendStatus::Built) {
    Problem pb = in.p;
    pb.out = base.view();
    make_backend("uniform")->forward(pb);
  } else {
    mean_value_baseline(in.p, base.view());
  }
  in.baseline_rel = compare(as_view(gather(base.cview(), in.rows), in), as_view(in.ref, in)).rel_fro;
  // Largest ||v_j||_2 of each (batch, kv head): the last entry of the running maximum.
  const std::vector<double> running = numerics::value_norm_running_max(in.p);
  in.vmax.assign(static_cast<size_t>(d.batch * d.kv_heads), 0.0);
  for (int64_t bg = 0; bg < d.batch * d.kv_heads; ++bg)
    in.vmax[static_cast<size_t>(bg)] = running[static_cast<size_t>((bg + 1) * d.n_k - 1)];
  in.ref_w.clear();
  if (static_cast<int64_t>(in.rows.size()) * d.n_k <= Backend::kMaxWeights) {
    in.ref_w.resize(in.rows.size() * static_cast<size_t>(d.n_k));
    ReferenceBackend().weights_rows(in.p, 0, 0, in.rows, in.ref_w.data());
  }
}

// The fields every record of this input shares.
Record record_for(const Input& in, const std::string& spec) {
  const Shape d = in.p.dims();
  Record r;
  r.spec = spec;
  r.backend = spec.substr(0, spec.find(':'));
  r.family = in.family;
  r.input = in.name;
  r.n = d.n_q;
  r.d = d.d;
  r.heads = d.heads;
  r.batch = d.batch;
  r.causal = in.causal;
  r.baseline_rel_fro = in.baseline_rel;
  r.check = static_cast<int64_t>(in.rows.size()) == d.n_q ? "full" : "sampled:" + std::to_string(in.rows.size());
  return r;
}

Record measure(const Backend& b, const Input& in, const Suite& s, double sgemm, std::optional<double> exact_ms,
               PeakMemory& mem) {
  const Shape d = in.p.dims();
  Record r = record_for(in, b.spec());
  r.sgemm_gflops = sgemm;
  // Check first (this run is also the warm-up and the memory probe), then time.
  mem.reset();
  const auto t0 = Clock::now();
  try {
    b.forward(in.p);
  } catch (const Error& e) {
    r.status = std::string("unsupported: ") + e.what();
    return r;
  }
  const double first_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  r.peak_extra_mib = mem.extra_mib();
  const std::vector<float> got = gather(ConstView(in.p.out), in.rows);
  const ErrorMetrics em = compare(as_view(got, in), as_view(in.ref, in));
  r.max_abs = em.max_abs;
  r.rel_fro = em.rel_fro;
  r.mean_row_l2 = em.mean_row_l2;
  r.beats_baseline = std::isfinite(em.rel_fro) ? em.rel_fro < in.baseline_rel : 0;
  // Probability rows and the bound on the checked rows (all, or the sample above
  // full_check_max_n): both cost O(rows · n_k · d), not an n_q × n_k pass.
  const int64_t m = static_cast<int64_t>(in.rows.size());
  if (!in.ref_w.empty() && b.capabilities().weights) {
    std::vector<float> w(in.ref_w.size());
    try {
      b.weights_rows(in.p, 0, 0, in.rows, w.data());
      double l1 = 0;
      for (int64_t t = 0; t < m; ++t) l1 += row_l1(w.data() + t * d.n_k, in.ref_w.data() + t * d.n_k, d.n_k);
      r.prob_l1 = l1 / static_cast<double>(m);
    } catch (const Error& e) {  // a backend whose rows come from the whole matrix, above its limit
      std::fprintf(stderr, "sweep: no prob. row L1 for %s: %s\n", b.spec().c_str(), e.what());
    }
  }
  if (const auto bound = b.error_bound_rows(in.p, in.rows)) {
    const std::vector<double> err = row_l2_errors(as_view(got, in), as_view(in.ref, in));
    bool holds = bound->out_l2.size() == err.size();
    double mx = 0;
    // The bounds are statements about exact arithmetic (a row whose window holds all of its
    // softmax mass has bound 0): allow float32 rounding, 1e-5 of the largest value row.
    for (size_t i = 0; holds && i < err.size(); ++i) {
      const int64_t b = static_cast<int64_t>(i) / (d.heads * m), h = static_cast<int64_t>(i) / m % d.heads;
      holds = err[i] <= bound->out_l2[i] * (1 + 1e-5) + 1e-5 * in.vmax[static_cast<size_t>(b * d.kv_heads + h / d.group())];
      mx = std::max(mx, bound->out_l2[i]);
    }
    r.bound_max = mx;
    r.bound_holds = holds;
  }
  std::vector<double> ms;
  const int reps = first_ms > 5000 ? 1 : s.repeat;
  double total_ms = 0;
  for (int t = 0; t < reps || (total_ms < 1e3 * s.min_time_s && t < 1000); ++t) {
    const auto a = Clock::now();
    b.forward(in.p);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
    total_ms += ms.back();
  }
  r.runs = static_cast<int64_t>(ms.size());
  std::sort(ms.begin(), ms.end());
  r.ms_best = ms.front();
  r.ms_median = ms[ms.size() / 2];
  r.spread = r.ms_median / r.ms_best;
  // Exact-equivalent rate: the flops exact attention needs for this (masked) problem per second.
  const Shape sh{d.batch, d.heads, d.kv_heads, d.n_q, d.n_k, d.d, d.d_v, in.causal};
  r.gflops_actual = b.cost(sh).flops / (r.ms_best * 1e6);
  r.gflops = exact_equivalent_flops(in.p) / (r.ms_best * 1e6);
  r.ratio_sgemm = r.gflops / sgemm;
  if (exact_ms) r.speedup = *exact_ms / r.ms_best;
  return r;
}

// A peer's result as a record of this input: checked on the same rows, ratio to exact.
Record peer_record(const Input& in, const PeerResult& pr, double sgemm, std::optional<double> exact_ms) {
  Record r = record_for(in, pr.label);
  r.label = pr.label;
  r.backend = pr.label.substr(0, pr.label.find(' '));
  r.status = pr.status;
  if (pr.status != "ok") return r;
  r.sgemm_gflops = sgemm;
  const auto& os = pr.out.shape();
  if (os[0] != in.q.shape()[0] || os[1] != in.q.shape()[1] || os[2] != in.q.shape()[2] || os[3] != in.v.shape()[3])
    detail::fail("sweep peers: ", pr.label, " output has the wrong shape; expected [B,H,n_q,d_v]");
  const ErrorMetrics em = compare(as_view(gather(pr.out.view(), in.rows), in), as_view(in.ref, in));
  r.max_abs = em.max_abs;
  r.rel_fro = em.rel_fro;
  r.mean_row_l2 = em.mean_row_l2;
  r.beats_baseline = std::isfinite(em.rel_fro) ? em.rel_fro < in.baseline_rel : 0;
  r.ms_best = pr.ms_best;
  r.ms_median = pr.ms_median;
  r.runs = pr.runs;
  r.spread = r.ms_median / r.ms_best;
  const Shape d = in.p.dims();
  const Shape sh{d.batch, d.heads, d.kv_heads, d.n_q, d.n_k, d.d, d.d_v, in.causal};
  r.gflops = r.gflops_actual = exact_cost(sh).flops / (r.ms_best * 1e6);
  r.ratio_sgemm = r.gflops / sgemm;
  if (exact_ms) r.speedup = *exact_ms / r.ms_best;
  return r;
}

// Real inputs: every *_q.npy in dir with its _k and _v siblings.
std::vector<std::string> real_prefixes(const std::string& dir) {
  if (!fs::is_directory(dir)) detail::fail("--inputs ", dir, ": not a directory");
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string f = e.path().filename().string();
    if (f.size() > 6 && f.substr(f.size() - 6) == "_q.npy") out.push_back(f.substr(0, f.size() - 6));
  }
  std::sort(out.begin(), out.end());
  if (out.empty()) detail::fail("--inputs ", dir, ": no *_q.npy files");
  return out;
}

std::string fmt_seconds(double s) {
  char buf[32];
  if (s >= 60) std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else std::snprintf(buf, sizeof buf, "%.0fs", s);
  return buf;
}

void write_meta(const std::string& path, const Suite& s, const MachineInfo& m, double sgemm, bool mem_ok,
                int64_t cases, double seconds, double warmup_s, const std::string& peers_note) {
  std::ofstream f(path);
  auto q = [](const std::string& x) { return json_string(x); };
  std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  f << "{\"suite\": " << q(s.name) << ", \"date\": " << q(date) << ", \"cpu\": " << q(m.cpu)
    << ", \"cores\": " << m.cores << ", \"threads\": " << m.threads << ", \"simd\": " << q(m.simd)
    << ", \"precision_kernels\": " << q(m.lowp)
    << ", \"compiler\": " << q(m.compiler) << ", \"blas\": " << q(m.blas) << ", \"sgemm_gflops\": " << sgemm
    << ", \"sgemm_n\": 2048, \"memory_probe\": " << (mem_ok ? "true" : "false") << ", \"heads\": " << s.heads
    << ", \"d\": " << s.d << ", \"repeat\": " << s.repeat << ", \"min_time_s\": " << s.min_time_s << ", \"full_check_max_n\": " << s.full_check_max_n
    << ", \"sampled_rows\": " << s.sampled_rows << ", \"cases\": " << cases << ", \"seconds\": " << seconds
    << ", \"warmup_seconds\": " << warmup_s << ", \"peers_max_n\": " << kPeersMaxN << ", \"peers\": " << q(peers_note)
    << ", \"attnkit_version\": " << q(ATTNKIT_VERSION) << "}\n";
}

}  // namespace

int cmd_sweep(const std::vector<std::string>& argv) {
  Args args(argv, {"--suite", "--backends", "--families", "--n", "--out", "--inputs", "--heads", "--d", "--repeat",
                   "--threads"},
            {"--no-peers"});
  Suite s = suite_by_name(args.str("--suite", "quick"));
  // A given list names at least one entry (",": none): an empty one ran nothing, or exact alone.
  auto list = [&](const char* flag, std::vector<std::string> items, const char* what) {
    if (items.empty())
      detail::fail(flag, " '", args.str(flag), "': no entries; expected a comma-separated list of ", what);
    return items;
  };
  if (args.has("--backends")) s.backends = list("--backends", split_specs(args.str("--backends")), "backend specs");
  if (args.has("--families")) {
    s.families = list("--families", split_list(args.str("--families")), "input families");
    for (const auto& f : s.families) parse_input_family(f);
  }
  if (args.has("--n")) {
    s.n.clear();
    for (const auto& x : list("--n", split_list(args.str("--n")), "sequence lengths")) {
      char* end = nullptr;
      const long long v = std::strtoll(x.c_str(), &end, 10);
      if (*end != '\0' || v < 2 || v > (int64_t{1} << 22)) detail::fail("--n ", x, ": expected integers in [2, 4194304]");
      s.n.push_back(v);
    }
  }
  s.heads = args.integer("--heads", s.heads, 1, 256);
  s.d = args.integer("--d", s.d, 1, 1024);
  s.repeat = static_cast<int>(args.integer("--repeat", s.repeat, 1, 1000));
  const int64_t threads = args.integer("--threads", 2, 1, kMaxThreads);
  omp_set_num_threads(static_cast<int>(threads));
  const std::string out_dir = args.str("--out", "results");

  // Backends: exact first, every spec parsed before any work (bad specs fail fast); a family that
  // was not built is skipped with a note.
  std::vector<std::unique_ptr<Backend>> backends;
  std::vector<std::string> labels;  // the specs as written: short labels for plots and tables
  backends.push_back(make_backend("exact"));
  labels.push_back("exact");
  for (const std::string& spec : s.backends) {
    if (backend_status(parse_spec(spec).name) == BackendStatus::NotBuilt) {
      std::fprintf(stderr, "sweep: skipping %s: its family was not built\n", spec.c_str());
      continue;
    }
    auto b = make_backend(spec);
    if (b->spec() != backends.front()->spec()) {
      backends.push_back(std::move(b));
      labels.push_back(spec);
    }
  }

  std::vector<std::string> prefixes;
  std::string in_dir;
  if (args.has("--inputs")) {
    in_dir = args.str("--inputs");
    prefixes = real_prefixes(in_dir);
  }
  // Every argument is checked: only now the output folder (a bad --backends left an empty one).
  fs::create_directories(out_dir);
  const int64_t n_inputs = static_cast<int64_t>(s.families.size() * s.n.size() + 2 * prefixes.size());
  int64_t total = n_inputs * static_cast<int64_t>(backends.size());  // less the cases max_n skips

  const MachineInfo machine = machine_info();
  const double sgemm = sgemm_gflops(2048);
  PeakMemory mem;
  std::fprintf(stderr, "sweep %s: %lld inputs x %zu backends = %lld cases, %d threads, sgemm 2048^3 %.1f GFLOP/s%s\n",
               s.name.c_str(), (long long)n_inputs, backends.size(), (long long)total, (int)threads, sgemm,
               mem.available() ? "" : " (no peak-memory probe on this kernel)");
  std::ofstream jl(out_dir + "/results.jsonl"), csv(out_dir + "/results.csv");
  write_csv_header(csv);
  const auto start = Clock::now();
  int64_t done = 0;
  double warmup_s = -1;
  // Peers (numpy, torch) on every input up to kPeersMaxN, unless --no-peers; the first failure to
  // find or run them turns them off for the run, with the reason in meta.json and the report.
  bool peers_on = !args.has("--no-peers");
  std::string peers_note = peers_on ? "" : "off (--no-peers)";

  auto run_input = [&](Input& in) {
    const Shape d{1, in.q.shape()[1], in.k.shape()[1], in.q.shape()[2], in.k.shape()[2], in.q.shape()[3], in.v.shape()[3]};
    Tensor out(in.q.shape()[0], d.heads, d.n_q, d.d_v);
    prepare(in, s, out);
    if (warmup_s < 0) warmup_s = warm_up([&] { backends.front()->forward(in.p); }, 0.5, 5.0);
    std::optional<double> exact_ms;
    for (size_t bi = 0; bi < backends.size(); ++bi) {
      const auto& b = backends[bi];
      const auto cap = s.max_n.find(labels[bi]);
      if (cap != s.max_n.end() && d.n_q > cap->second) {  // the suite leaves this size out for it
        --total;
        continue;
      }
      const double el = std::chrono::duration<double>(Clock::now() - start).count();
      std::fprintf(stderr, "[%lld/%lld] %s n=%lld%s %s  elapsed %s, ETA %s\n", (long long)done + 1, (long long)total,
                   in.name.c_str(), (long long)d.n_q, in.causal ? " causal" : "", b->spec().c_str(),
                   fmt_seconds(el).c_str(), done ? fmt_seconds(el / done * (total - done)).c_str() : "?");
      Record r = measure(*b, in, s, sgemm, exact_ms, mem);
      r.label = labels[bi];
      if (!exact_ms && r.status == "ok") exact_ms = r.ms_best, r.speedup = 1.0;
      write_json_line(jl, r);
      write_csv_line(csv, r);
      jl.flush();
      csv.flush();
      ++done;
    }
    if (peers_on && exact_ms && d.n_q <= kPeersMaxN && d.n_k <= kPeersMaxN) {
      std::fprintf(stderr, "[peers] %s n=%lld%s numpy, torch\n", in.name.c_str(), (long long)d.n_q, in.causal ? " causal" : "");
      try {
        for (const PeerResult& pr :
             run_peers(out_dir, in.q, in.k, in.v, in.causal, static_cast<int>(threads), s.repeat, s.min_time_s)) {
          const Record r = peer_record(in, pr, sgemm, exact_ms);
          if (r.status != "ok" && peers_note.find(r.status) == std::string::npos)
            peers_note += (peers_note.empty() ? "" : "; ") + r.label + ": " + r.status;
          write_json_line(jl, r);
          write_csv_line(csv, r);
        }
      } catch (const Error& e) {
        std::fprintf(stderr, "sweep: peers off for the rest of the run: %s\n", e.what());
        peers_note += std::string(peers_note.empty() ? "" : "; ") + "off after an error: " + e.what();
        peers_on = false;
      }
    }
    // The trivial baseline as its own row, so every table has it.
    Record base = record_for(in, "mean(V)");
    base.label = "mean(V)";
    base.rel_fro = in.baseline_rel;
    write_json_line(jl, base);
    write_csv_line(csv, base);
  };

  for (const std::string& fam : s.families)
    for (int64_t n : s.n) {
      Inputs g = generate(parse_input_family(fam), 1, s.heads, n, s.d, 1);
      Input in(fam, fam, false, std::move(g.q), std::move(g.k), std::move(g.v));
      run_input(in);
    }
  for (const std::string& pre : prefixes)
    for (bool causal : {true, false}) {
      Input in("trained", pre, causal, load_tensor("--inputs", in_dir + "/" + pre + "_q.npy"),
               load_tensor("--inputs", in_dir + "/" + pre + "_k.npy"), load_tensor("--inputs", in_dir + "/" + pre + "_v.npy"));
      run_input(in);
    }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  write_meta(out_dir + "/meta.json", s, machine, sgemm, mem.available(), done, seconds, warmup_s, peers_note);
  std::fprintf(stderr, "sweep done: %lld cases in %s; wrote %s/results.jsonl, results.csv, meta.json\n",
               (long long)done, fmt_seconds(seconds).c_str(), out_dir.c_str());
  return 0;
}

}  // namespace attnkit::cli
