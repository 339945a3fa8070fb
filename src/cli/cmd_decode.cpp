// attnkit decode: token-by-token decoding over a KV cache, timed against the machine's read
// bandwidth measured in the same run.
//
// Timing: the best step (ms per token, cache GB/s = bytes the step read / its time) against the best
// pass of a streaming-read probe run between the steps in the same process (ratio = their quotient).
//
// Inputs: --cache N (generated gaussian inputs: N cached positions, then S decoded; keys and values
// are generated in chunks of kGenChunk positions so that nothing but the cache holds the sequence)
// or --q/--k/--v files (the first N - S positions fill the cache, the last S are decoded).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#include "args.hpp"
#include "attnkit/decode.hpp"
#include "attnkit/error.hpp"
#include "attnkit/inputs.hpp"
#include "attnkit/limits.hpp"
#include "commands.hpp"
#include "json.hpp"

namespace attnkit::cli {

namespace {

constexpr int64_t kGenChunk = 1024;

// Positions [p0, p1) of a [B, G, n, d] view.
ConstView slice(ConstView x, int64_t p0, int64_t p1) {
  ConstView s = x;
  s.data = x.data + p0 * x.stride[2];
  s.shape[2] = p1 - p0;
  return s;
}

// Where the keys, values and decoded queries come from.
struct Source {
  int64_t batch = 1, heads = 1, kv_heads = 1, d = 1, d_v = 1;
  int64_t cached = 0, steps = 0;  // positions [0, cached) prefill, [cached, cached + steps) decoded
  std::vector<int32_t> key_lengths;
  // Calls f(k, v, p0) for views covering positions [p0, p1) in pieces.
  std::function<void(int64_t, int64_t, const std::function<void(ConstView, ConstView, int64_t)>&)> kv;
  std::function<ConstView(int64_t step)> q;  // [B, H, 1, d] of decoded step s
};

// fp64 attention of the decoded positions over their visible keys (the causal reference).
Tensor reference(const Source& src, float scale) {
  const int64_t S = src.steps, B = src.batch, H = src.heads, dv = src.d_v, d = src.d;
  const int64_t group = H / src.kv_heads, rows = S * B * H;
  std::vector<double> m(static_cast<size_t>(rows), -INFINITY), l(static_cast<size_t>(rows), 0.0),
      acc(static_cast<size_t>(rows * dv), 0.0);
  src.kv(0, src.cached + S, [&](ConstView k, ConstView v, int64_t p0) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t s = r / (B * H), b = (r / H) % B, h = r % H, g = h / group;
      int64_t end = src.cached + s + 1;
      if (!src.key_lengths.empty()) end = std::min<int64_t>(end, src.key_lengths[static_cast<size_t>(b)]);
      const float* qr = src.q(s).row(b, h, 0);
      double* a = acc.data() + r * dv;
      for (int64_t j = 0; j < k.shape[2] && p0 + j < end; ++j) {
        const float* kr = k.row(b, g, j);
        double dot = 0;
        for (int64_t c = 0; c < d; ++c) dot += static_cast<double>(qr[c]) * kr[c];
        const double sc = dot * scale;
        if (sc > m[static_cast<size_t>(r)]) {
          const double f = std::exp(m[static_cast<size_t>(r)] - sc);
          l[static_cast<size_t>(r)] *= f;
          for (int64_t c = 0; c < dv; ++c) a[c] *= f;
          m[static_cast<size_t>(r)] = sc;
        }
        const double p = std::exp(sc - m[static_cast<size_t>(r)]);
        l[static_cast<size_t>(r)] += p;
        const float* vr = v.row(b, g, j);
        for (int64_t c = 0; c < dv; ++c) a[c] += p * vr[c];
      }
    }
  });
  Tensor out(B, H, S, dv);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t s = r / (B * H), b = (r / H) % B, h = r % H;
    float* o = out.view().row(b, h, s);
    for (int64_t c = 0; c < dv; ++c)
      o[c] = l[static_cast<size_t>(r)] > 0 ? static_cast<float>(acc[static_cast<size_t>(r * dv + c)] / l[static_cast<size_t>(r)]) : 0.0f;
  }
  return out;
}

}  // namespace

int cmd_decode(const std::vector<std::string>& argv) {
  Args args(argv, {"--backend", "--steps", "--storage", "--threads", "--out", "--cache", "--heads", "--kv-heads", "--d",
                   "--batch", "--q", "--k", "--v", "--key-lengths", "--probe-mib"},
            {"--json", "--check"});
  const std::string spec = args.str("--backend");
  const int64_t steps = args.integer("--steps", -1, 1, int64_t{1} << 30);
  if (steps < 0) detail::fail("--steps is required; expected --steps S (decoded positions, >= 1)");
  const KvStorage storage = parse_kv_storage(args.str("--storage", "f32"));
  const int64_t threads = args.integer("--threads", 0, 0, kMaxThreads);
  // The probe's size: 0 = 16x the last-level cache, >= 256 MiB (ReadProbe). A smaller probe no
  // longer measures the memory's bandwidth (nor evicts the cache); tests that check outputs, not
  // speed, use one to save the passes' time.
  const int64_t probe_mib = args.integer("--probe-mib", 0, 0, int64_t{1} << 20);
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));
  const bool gen = args.has("--cache"), files = args.has("--q") || args.has("--k") || args.has("--v");
  if (gen == files)
    detail::fail("give either --cache N (generated inputs) or --q Q.npy --k K.npy --v V.npy; got ",
                 gen ? "both" : "neither");

  Source src;
  Tensor qf, kf, vf;                 // file mode
  Tensor qg;                         // generated mode: the decoded queries
  int64_t gen_chunk = -1;
  Tensor gk, gv;                     // generated mode: the current chunk of keys and values
  if (gen) {
    for (const char* f : {"--key-lengths"})
      if (args.has(f)) detail::fail(f, " needs --q/--k/--v inputs; expected it without --cache");
    src.cached = args.integer("--cache", 0, 0, int64_t{1} << 40);
    src.batch = args.integer("--batch", 1, 1, 1 << 20);
    src.heads = args.integer("--heads", 32, 1, 1 << 20);
    src.kv_heads = args.integer("--kv-heads", 8, 1, 1 << 20);
    src.d = src.d_v = args.integer("--d", 128, 1, 1 << 20);
    src.steps = steps;
    if (src.heads % src.kv_heads != 0)
      detail::fail("--heads ", src.heads, " is not a multiple of --kv-heads ", src.kv_heads,
                   "; expected heads % kv_heads == 0");
    qg = generate(InputFamily::Gaussian, src.batch, src.heads, steps, src.d, 7).q;
    src.q = [&](int64_t s) { return slice(qg.cview(), s, s + 1); };
    // Chunk c of keys and values: a function of c only (the --check pass regenerates them).
    src.kv = [&](int64_t p0, int64_t p1, const std::function<void(ConstView, ConstView, int64_t)>& f) {
      for (int64_t a = p0; a < p1;) {
        const int64_t c = a / kGenChunk, e = std::min(p1, (c + 1) * kGenChunk);
        if (c != gen_chunk) {
          Inputs in = generate(InputFamily::Gaussian, src.batch, src.kv_heads, kGenChunk, src.d, 1000 + static_cast<uint64_t>(c));
          gk = std::move(in.k);
          gv = std::move(in.v);
          gen_chunk = c;
        }
        f(slice(gk.cview(), a - c * kGenChunk, e - c * kGenChunk), slice(gv.cview(), a - c * kGenChunk, e - c * kGenChunk), a);
        a = e;
      }
    };
  } else {
    for (const char* f : {"--heads", "--kv-heads", "--d", "--batch"})
      if (args.has(f)) detail::fail(f, " applies to generated inputs; expected it only with --cache N");
    qf = load_tensor("--q", args.str("--q"));
    kf = load_tensor("--k", args.str("--k"));
    vf = load_tensor("--v", args.str("--v"));
    const auto &qs = qf.shape(), &ks = kf.shape(), &vs = vf.shape();
    if (ks[0] != qs[0] || vs[0] != qs[0] || vs[1] != ks[1] || ks[2] != qs[2] || vs[2] != qs[2] || ks[3] != qs[3])
      detail::fail("--q/--k/--v: shapes q [", qs[0], ",", qs[1], ",", qs[2], ",", qs[3], "], k [", ks[0], ",", ks[1], ",",
                   ks[2], ",", ks[3], "], v [", vs[0], ",", vs[1], ",", vs[2], ",", vs[3],
                   "]; expected q [B,H,N,d], k [B,G,N,d], v [B,G,N,d_v]");
    if (qs[1] % ks[1] != 0)
      detail::fail("--q/--k: q has ", qs[1], " heads, not a multiple of k's ", ks[1], "; expected H % G == 0");
    if (steps > qs[2]) detail::fail("--steps ", steps, " exceeds the sequence length ", qs[2], "; expected S <= N");
    src.batch = qs[0];
    src.heads = qs[1];
    src.kv_heads = ks[1];
    src.d = qs[3];
    src.d_v = vs[3];
    src.cached = qs[2] - steps;
    src.steps = steps;
    if (args.has("--key-lengths")) {
      src.key_lengths = load_key_lengths(args.str("--key-lengths"), src.batch);
      // Every backend's cache here ends at N (local and the kernelized ones would not refuse more).
      for (size_t b = 0; b < src.key_lengths.size(); ++b)
        if (src.key_lengths[b] < 0 || src.key_lengths[b] > qs[2])
          detail::fail("--key-lengths ", args.str("--key-lengths"), ": key_lengths[", b, "]=", src.key_lengths[b],
                       "; expected a value in [0, ", qs[2], "] (the sequence length N)");
    }
    src.q = [&](int64_t s) { return slice(qf.cview(), src.cached + s, src.cached + s + 1); };
    src.kv = [&](int64_t p0, int64_t p1, const std::function<void(ConstView, ConstView, int64_t)>& f) {
      if (p1 > p0) f(slice(kf.cview(), p0, p1), slice(vf.cview(), p0, p1), p0);
    };
  }

  DecodeConfig cfg;
  cfg.batch = src.batch;
  cfg.heads = src.heads;
  cfg.kv_heads = src.kv_heads;
  cfg.d = src.d;
  cfg.d_v = src.d_v;
  cfg.capacity = std::max<int64_t>(1, src.cached + steps);
  cfg.max_step = 1;
  cfg.storage = storage;
  cfg.key_lengths = src.key_lengths;
  Decoder dec(spec, cfg);

  src.kv(0, src.cached, [&](ConstView k, ConstView v, int64_t) { dec.append(k, v); });
  // The read bandwidth: passes of the probe interleaved with the steps (three before the first), so
  // the ceiling and the steps see the same machine; best of each. Each pass also evicts the cache
  // from the last-level cache, as a model's other layers would between two steps.
  // At most about 8 passes between the steps (a pass of 256 MiB takes 10-30 ms).
  ReadProbe probe(probe_mib << 20);
  for (int r = 0; r < 3; ++r) probe.run();
  const int64_t probe_every = std::max<int64_t>(1, steps / 8);

  Tensor out(src.batch, src.heads, steps, src.d_v);
  double seconds = 0, bytes = 0, best_s = INFINITY, best_bytes = 0;
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t p = src.cached + s;
    src.kv(p, p + 1, [&](ConstView k, ConstView v, int64_t) {
      MutView o = out.view();
      o.data = o.data + s * o.stride[2];
      o.shape[2] = 1;
      const ConstView q = src.q(s);
      if (s % probe_every == 0) probe.run();
      const auto t0 = std::chrono::steady_clock::now();
      dec.step(q, k, v, o);
      const auto t1 = std::chrono::steady_clock::now();
      const double sec = std::chrono::duration<double>(t1 - t0).count();
      seconds += sec;
      bytes += static_cast<double>(dec.bytes_read());
      if (sec < best_s) {
        best_s = sec;
        best_bytes = static_cast<double>(dec.bytes_read());
      }
    });
  }
  // The best step, like the best of the bandwidth probe's repeats (a busy machine slows single
  // steps); the mean over all steps is reported next to it.
  const double ms_per_token = best_s * 1e3;
  const double ms_mean = seconds * 1e3 / static_cast<double>(steps);
  const double cache_gbps = best_s > 0 ? best_bytes / best_s / 1e9 : 0;
  const double cache_gbps_mean = seconds > 0 ? bytes / seconds / 1e9 : 0;
  if (args.has("--out")) save_tensor(args.str("--out"), out, 4);

  double rel = 0, max_abs = 0;
  if (args.has("--check")) {
    const Tensor ref = reference(src, 1.0f / std::sqrt(static_cast<float>(src.d)));
    double num = 0, den = 0;
    for (int64_t i = 0; i < out.numel(); ++i) {
      const double e = static_cast<double>(out.data()[i]) - ref.data()[i];
      num += e * e;
      den += static_cast<double>(ref.data()[i]) * ref.data()[i];
      max_abs = std::max(max_abs, std::fabs(e));
    }
    rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  }

  const double read_gbps = probe.best();
  const int nthreads = omp_get_max_threads();
  const double ratio = read_gbps > 0 ? cache_gbps / read_gbps : 0;
  if (args.has("--json")) {
    std::printf("{\"backend\": %s, \"storage\": \"%s\", \"cache\": %lld, \"steps\": %lld, \"batch\": %lld, "
                "\"heads\": %lld, \"kv_heads\": %lld, \"d\": %lld, \"d_v\": %lld, \"threads\": %d, "
                "\"ms_per_token\": %.6g, \"cache_gbps\": %.6g, \"read_gbps\": %.6g, \"ratio_read\": %.6g, "
                "\"ms_per_token_mean\": %.6g, \"cache_gbps_mean\": %.6g, \"state_bytes\": %lld",
                json_string(dec.spec()).c_str(), kv_storage_name(storage).c_str(), (long long)src.cached, (long long)steps,
                (long long)src.batch, (long long)src.heads, (long long)src.kv_heads, (long long)src.d,
                (long long)src.d_v, nthreads, ms_per_token, cache_gbps, read_gbps, ratio, ms_mean, cache_gbps_mean,
                (long long)dec.bytes());
    if (args.has("--check")) std::printf(", \"rel_fro\": %.6g, \"max_abs\": %.6g", rel, max_abs);
    std::printf("}\n");
  } else {
    std::printf("backend   %s\n", dec.spec().c_str());
    std::printf("cache     %lld positions, storage %s, %.1f MB held; batch %lld, heads %lld (kv %lld), d %lld, d_v %lld\n",
                (long long)src.cached, kv_storage_name(storage).c_str(), static_cast<double>(dec.bytes()) / 1e6,
                (long long)src.batch, (long long)src.heads, (long long)src.kv_heads, (long long)src.d,
                (long long)src.d_v);
    std::printf("time      %.4f ms per token (best of %lld steps; mean %.4f ms; %d threads)\n", ms_per_token,
                (long long)steps, ms_mean, nthreads);
    std::printf("speed     cache %.2f GB/s; read bandwidth %.2f GB/s (same run); ratio %.3f\n", cache_gbps, read_gbps,
                ratio);
    if (args.has("--check")) std::printf("check     vs fp64: rel_fro %.3g  max_abs %.3g\n", rel, max_abs);
    if (args.has("--out")) std::printf("wrote     %s\n", args.str("--out").c_str());
  }
  return 0;
}

}  // namespace attnkit::cli
