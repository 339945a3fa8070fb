#pragma once
// Internal: the decode kernels (one block of cache rows against the query rows of one (batch, kv
// head)), compiled once per SIMD path like src/simd (kernel_arch.cpp), chosen by the path the
// process runs (attnkit::simd_path(), so ATTNKIT_SIMD applies here too).
#include <cstdint>

#include "attnkit/kv_cache.hpp"

namespace attnkit::decode {

// The query rows of one (batch, kv head): the group's query heads times the t new tokens, packed.
struct Rows {
  const float* q = nullptr;      // rows x d, pre-multiplied by the softmax scale
  int64_t rows = 0;              // a multiple of kRowBlock (padding rows see nothing)
  const int64_t* begin = nullptr;  // per row: visible positions are [begin[r], end[r])
  const int64_t* end = nullptr;
  int64_t d = 0, d_v = 0;
  // int8 storage with d <= kInt16MaxD: q quantised once per attend (quantize_q16), rows x d int16,
  // and per row its scale. Null otherwise (the float kernel runs).
  const int16_t* q16 = nullptr;
  const float* q16_scale = nullptr;
};

// int8 storage computes its dot products in integers (see kernel_arch.cpp): q as int16 times the
// int8 keys, summed in int32. |q16| <= 32767 and |k| <= 127, so d <= 516 terms fit in an int32;
// above kInt16MaxD the float kernel runs instead.
constexpr int64_t kInt16MaxD = 512;

// Row r of q (rows x d floats) as int16: scale = max|q_r| / 32767 (float), q16 = round-half-even(
// q · (32767 / max|q_r|)) clamped to [-32767, 32767]; a row of zeros has scale 0; a row with a
// non-finite element gets q16 = 0 and scale NaN (its scores are NaN, as the float kernel's).
void quantize_q16(const float* q, int64_t rows, int64_t d, int16_t* q16, float* scale);

// Contiguous cache slots of one (batch, kv head), holding positions pos0 .. pos0 + count - 1.
struct Block {
  KvStorage storage = KvStorage::F32;
  const void* k = nullptr;         // first row (d elements of the storage type per row)
  const void* v = nullptr;         // first row (d_v elements per row)
  const float* ks = nullptr;       // int8: scale per row, else null
  const float* vs = nullptr;
  int64_t pos0 = 0, count = 0;
  // The two blocks that follow in the same run of work items (null if none; engine.cpp gives a
  // thread runs of consecutive items). Pages are runs of a few rows that the hardware prefetcher
  // cannot follow, and every item's start would otherwise wait for its first tile: the first block
  // of a run requests its own first tile (and, if it is a single tile, the next block's); during
  // its last tile a block of several tiles requests the next block's first tile, a block of one
  // tile the block after next's. first_requested: this block is not the first of its run.
  const void* next_k[2] = {nullptr, nullptr};
  const void* next_v[2] = {nullptr, nullptr};
  int64_t next_count[2] = {0, 0};
  bool first_requested = false;
};

constexpr int64_t kRowBlock = 4;   // query rows per register block
constexpr int64_t kTileKeys = 128;  // cache rows of the longest tile (int8; f32 and bf16: 32)
constexpr int64_t kBoundLanes = 16;  // pages per block of the page-bound layout (pages.cpp)

// Floats of scratch one attend_block call needs.
inline int64_t scratch_floats(int64_t rows, int64_t d, int64_t d_v) {
  (void)d_v;
  // the tile's scores / probabilities; int8: their u8 weights (kTileKeys bytes per row), then per
  // row one scale; bf16 on 16-float vectors: the rows of q in even / odd channel order (rows x d)
  static_assert(kTileKeys % 8 == 0, "int8 PV: the u8 weights of a tile are whole groups of 8");
  return rows * kTileKeys + rows * (kTileKeys / 4) + rows + rows * d + 64;
}

struct Kernels {
  const char* name;
  // Online softmax over the block: updates each row's running max m, sum l and unnormalised
  // accumulator acc (rows x d_v, row stride d_v). Start from m = -inf, l = 0, acc = 0.
  void (*attend_block)(const Rows& r, const Block& blk, float* m, float* l, float* acc, float* scratch);
  // Quest page bounds of 4 query rows: out[r * out_stride + p] = Σ_c max(q_c·lo_c, q_c·hi_c)
  // = Σ_c q⁺_c·hi_c + q⁻_c·lo_c for the pages [0, pages) rounded up to whole blocks of
  // kBoundLanes pages (out has room for them; the lanes past `pages` get whatever bounds those
  // slots hold, which the caller ignores). qpn: per row q⁺ = max(q, 0) (d floats) then q⁻ = min(q, 0) (d floats).
  // bounds: blocks of kBoundLanes pages, each lo then hi, channel-major with the block's pages
  // contiguous per channel ([2][d][kBoundLanes] bfloat16), so that one vector holds a channel of
  // kBoundLanes pages and no horizontal sums are needed.
  void (*page_bounds)(const float* qpn, int64_t d, const uint16_t* bounds, int64_t pages, float* out,
                      int64_t out_stride);
  // Sum of n floats (the streaming read of the bandwidth measurement).
  double (*stream_sum)(const float* p, int64_t n);
};

const Kernels& kernels();  // of the active SIMD path; throws attnkit::Error like simd_path()

}  // namespace attnkit::decode
