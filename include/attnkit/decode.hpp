#pragma once
// Decoding: attention of a few new tokens over a cache of past keys and values (../shared/DESIGN.md,
// "decode and KV cache").
//
// Design. A Decoder owns the state its backend needs (a KvCache, a ring cache, page bounds or a
// recurrent state) and is used like an inference engine: append the new tokens' keys and values
// first, then attend their queries:
//
//     attnkit::Decoder dec("exact", cfg);         // cfg: sizes, storage, capacity
//     dec.append(k_prompt, v_prompt);             // [B, H_kv, n, d]: fill the cache
//     for (...) { dec.append(k1, v1);             // [B, H_kv, t, d]
//                 dec.attend(q1, out1); }         // [B, H, t, d] -> [B, H, t, d_v]
//
// attend(q, out) decodes the last t appended positions P = size()-t .. size()-1 with causal
// semantics: the query of position P sees the positions <= P (and < key_lengths[b] when set),
// so attending the last n positions of a sequence one token at a time equals
// `attnkit run --causal` on the whole sequence. GQA: query head h reads kv head h / (H / H_kv).
//
// Backends (spec strings; defaults shown; ranges inclusive):
//   exact                 every cached position. Split-K: the positions of each (batch, kv head)
//                         are cut into chunks of 1024 (fixed, so the result does not depend on the
//                         thread count), the chunks of all (batch, kv head) pairs are spread over the
//                         OpenMP threads; each chunk keeps a partial (max, sum, accumulator) per
//                         query row and the partials are merged with weights exp(m_i − max_i m_i)
//                         (never exp of a positive number; an empty chunk has m = −inf and weight 0).
//                         The query heads of a group (and the t new tokens) are processed together,
//                         so each loaded K/V row serves all of them (GQA reuse). No parameters.
//   local:window=256      the `window` positions ending at the query's (local:window=W with
//                         --causal); window in [1, 2^30]. The cache is a ring of window +
//                         max_step − 1 slots: memory O(window), independent of the sequence length.
//   pages:page=16,keep=1024
//                         page in [1, 2^20], keep in [1, 1e15].
//                         Quest (Tang et al. 2024): per page of `page` positions of each (batch, kv
//                         head) the per-channel min and max of the stored (dequantised) keys, kept
//                         as bfloat16 with the min rounded down and the max rounded up (so still
//                         bounds; 2·d·2 bytes per page, 1/16 of an f32 page of 16 keys and values);
//                         page bound for query q: Σ_c max(q_c·min_c, q_c·max_c) ≥ q·k for every key
//                         k of the page. The bounds of a group's query rows are computed in one pass
//                         over the pages, split across the threads; the best pages by nth_element. Exact attention over the best ⌈keep / page⌉ pages plus the
//                         pages holding the newest position and the t new positions. `keep` counts
//                         keys (so keep=N/8 reads about an eighth of the cache). With GQA the
//                         group's query rows share one page selection: a page's score is the
//                         maximum over the rows of (its bound − that row's best bound).
//   performer[:...]       the recurrent state of kernelized attention (KernelizedState, one per
//   linear[:...]          (batch, kv head)); parameters as attnkit/kernelized.hpp. The state is
//                         float32: storage must be f32. Appended positions are absorbed into the
//                         state once they can no longer be among the next attend's t positions, so
//                         memory is O(m·d_v + max_step·(d + d_v)) per (batch, kv head).
// Every KV-cache backend (exact, local, pages) supports every storage (f32, bf16, int8).
//
// int8 storage arithmetic (d <= 512; above, the float kernel runs on the dequantised rows): each
// attend quantises every query row q·scale once to int16, s_q = max|q·scale| / 32767, q16 =
// round-half-even(q·scale · 32767 / max|q·scale|) (a row with a non-finite element: NaN scores);
// scores are exact int32 dot products with the stored int8 keys, float(Σ q16·k8) · s_q · s_k.
// Per tile of 128 cached positions (tiles start at multiples of 128 within each split-K chunk;
// local's ring and pages' pages start tiles where their runs start) the softmax weights
// w_j = exp(s_j − running max) · s_v,j become u8 (this exp, as bf16 storage's, is a degree-5
// polynomial with relative error < 1.2e-5; f32 storage uses the kernels' exp): with G the largest of the sums
// w_j + w_j+1 + w_j+4 + w_j+5 and w_j+2 + w_j+3 + w_j+6 + w_j+7 over the tile's groups of 8
// positions (j a multiple of 8 from the tile's start; positions past the tile's end count 0),
// w8_j = min(round-half-even(w_j · 256 / G), 255), and the tile adds float(Σ_j w8_j · v8_j) · G / 256
// (exact int32 sums) to the float accumulator; the softmax denominator sums the unrounded exp.
// (The bound on those sums keeps every int16 partial of the AVX2 kernel, 4 weights times |v8| <=
// 127, below 2^15.) Relative rounding: 2^-16 of a row's largest |q| element; a weight's rounding
// is at most 1/512 of the largest group sum G (about 1/128 of a weight where a tile's weights are
// alike). Error vs fp64 with int8 storage: about 1.3e-2 on gaussian and 0.8e-2–1.0e-2 on the
// trained inputs (int16 weights gave 0.9e-2 and 0.6e-2–0.8e-2 at 9% more time per token; see
// reports/decode/README.md), tested <= 3e-2.
// Integer sums do not depend on the SIMD path or the thread count: every path computes the same
// scores and weighted sums (AVX2: vpmaddwd and vpmaddubsw; the others in scalar code).
//
// Cost per attend: exact reads every cached K/V row once (bytes_read()); pages reads the page
// bounds (2·d bfloat16 per page, in whole blocks of 16 pages) plus the selected pages; local reads
// `window` rows.
//
// Thread-safety: none — one Decoder per stream; attend() uses the OpenMP threads inside
// (omp_get_max_threads()). Errors: attnkit::Error naming the argument, the value seen and the
// expected value, thrown before anything changes (a failed append leaves the cache as it was).
// Two failures of performer / linear come from inside append or attend, after some heads'
// recurrent states moved on: out of memory (std::bad_alloc), and attend's attnkit::Error for a
// query whose keys' features underflowed float32 (attnkit/kernelized.hpp, "Range"; it names the
// batch entry, head and position). Either makes that Decoder unusable: every later call throws
// attnkit::Error saying so, never a decode from mixed states.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attnkit/kv_cache.hpp"
#include "attnkit/tensor.hpp"

namespace attnkit {

struct DecodeConfig {
  int64_t batch = 1, heads = 1, kv_heads = 1, d = 64, d_v = 64;  // heads % kv_heads == 0
  // Positions the cache can hold (exact, pages). local ignores it (its ring holds the window),
  // performer/linear too (no cache); every backend still requires capacity >= 1.
  int64_t capacity = 4096;
  // Largest t one attend() may decode (local: ring slack; performer/linear: positions kept
  // unabsorbed). exact and pages accept any t <= size().
  int64_t max_step = 1;
  KvStorage storage = KvStorage::F32;
  std::optional<float> scale;  // unset: 1/sqrt(d)
  // Optional, one entry per batch entry: positions >= key_lengths[b] are padding (invisible).
  // Values in [0, capacity] for exact and pages (their cache never holds more); >= 0 for the others.
  std::vector<int32_t> key_lengths;
};

// Internal interface of the decode backends (src/decode).
class DecodeImpl;

class Decoder {
 public:
  // Throws for an unknown backend name (listing exact, local, pages, performer, linear), a bad
  // parameter (unknown key, value out of the range above), or a bad config (any size, capacity or
  // max_step < 1, heads not a multiple of kv_heads, a scale not finite and > 0, key_lengths size,
  // values < 0 or, for exact and pages, > capacity, storage other than f32 for performer/linear).
  Decoder(std::string_view spec, const DecodeConfig& cfg);
  ~Decoder();
  Decoder(Decoder&&) noexcept;
  Decoder& operator=(Decoder&&) noexcept;

  // Appends t >= 1 positions: k [B, H_kv, t, d], v [B, H_kv, t, d_v]. Throws (changing nothing)
  // for a shape mismatch or, for exact/pages, going past the capacity.
  void append(ConstView k, ConstView v);
  // Decodes the last t positions: q [B, H, t, d] -> out [B, H, t, d_v] (out must not overlap q).
  // Throws for a shape mismatch, t > size(), t > max_step (local, performer, linear) or, for
  // performer/linear, positions already attended; and (performer/linear, see above) for a query
  // whose features underflowed.
  void attend(ConstView q, MutView out);
  // append(k, v) then attend(q, out).
  void step(ConstView q, ConstView k, ConstView v, MutView out) {
    append(k, v);
    attend(q, out);
  }

  int64_t size() const;          // positions appended so far
  std::string spec() const;      // canonical spec, defaults filled in
  const DecodeConfig& config() const;
  int64_t bytes() const;         // memory of the decode state (cache, bounds, recurrent state)
  int64_t bytes_read() const;    // cache bytes the last attend() read (0 before the first)
  // pages only: the pages (index = position / page, ascending) the last attend() used for (b, g);
  // empty for other backends. For tests and inspection. Throws attnkit::Error for b outside
  // [0, batch) or g outside [0, kv_heads), for every backend.
  std::vector<int64_t> selected_pages(int64_t b, int64_t g) const;

 private:
  std::unique_ptr<DecodeImpl> impl_;
};

// Names of the decode backends: exact, local, pages, performer, linear.
const std::vector<std::string>& decode_backend_names();

// The machine's read bandwidth in GB/s (1e9 bytes/s): the best of `repeat` streaming reads of a
// buffer of `bytes` (0: 16 times the last-level cache, at least 256 MiB) by omp_get_max_threads()
// threads, each summing its own contiguous part. Throws for bytes < 0 or repeat < 1.
double read_bandwidth_gbps(int64_t bytes = 0, int repeat = 5);

// The same measurement, reusable: the buffer is allocated (2 MiB pages where the OS gives them, as
// the KvCache's memory) and touched once; each run() is one timed pass. Interleaving run() with
// decode steps gives both the same machine state (a busy machine slows both alike), and each pass
// evicts the cache from the last-level cache, as a model's other layers would between two steps.
// Thread-safety: none (one probe per thread of control); run() uses the OpenMP threads.
class ReadProbe {
 public:
  explicit ReadProbe(int64_t bytes = 0);  // bytes as read_bandwidth_gbps; throws for bytes < 0
  ~ReadProbe();
  ReadProbe(ReadProbe&&) noexcept;
  ReadProbe& operator=(ReadProbe&&) noexcept;
  double run();                        // one pass: GB/s
  double best() const { return best_; }  // best run() so far (0 before the first)
  int64_t bytes() const;

 private:
  struct Buffer;
  std::unique_ptr<Buffer> buf_;
  double best_ = 0;
  volatile double sink_ = 0;  // keeps the sums alive
};

}  // namespace attnkit
