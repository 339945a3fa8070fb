#pragma once
// KvCache: the keys and values of past tokens for decoding (attnkit/decode.hpp), in one of three
// storages:
//   f32   the values as given (4 bytes per element);
//   bf16  bfloat16, rounded to nearest even (2 bytes; relative rounding error <= 2^-9);
//   int8  symmetric int8, one fp32 scale per (token, kv head) for K and one for V:
//         scale = max|x| / 127, x ≈ scale · round(x / scale) (1 byte + 4 bytes per row).
//         Decode computes with the integers (attnkit/decode.hpp, "int8 storage arithmetic").
//
// Layout: per (batch b, kv head g) a contiguous block of `slots` rows, row = d (keys) or d_v
// (values) elements of the storage type, plus (int8) one float scale per row in a separate array.
// Position p (0-based index of the token in the sequence) lives in slot p for a linear cache and
// in slot p mod slots for a ring cache.
//
// Two kinds:
//   KvCache(batch, kv_heads, capacity, d, d_v, storage): linear; holds positions [0, capacity).
//       append() past the capacity throws and leaves the cache unchanged.
//   KvCache::ring(batch, kv_heads, slots, d, d_v, storage): keeps only the last `slots` positions
//       (memory O(slots), for sliding-window decoding); append() never runs out, the oldest
//       positions are overwritten. stored() = min(size(), slots).
//
// Batches are not ragged: every batch entry holds the same number of positions (append takes a
// [B, H_kv, t, ·] block). Shorter sequences are expressed as padding with DecodeConfig::key_lengths
// (positions >= key_lengths[b] are invisible to batch entry b), as Mask::key_lengths does.
//
// Thread-safety: const member functions may run concurrently; append() must not run concurrently
// with anything else on the same cache. Errors: attnkit::Error naming the argument, the value seen
// and the value expected; a throwing append() writes nothing.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "attnkit/tensor.hpp"

namespace attnkit {

enum class KvStorage { F32, BF16, Int8 };

KvStorage parse_kv_storage(std::string_view name);  // "f32" | "bf16" | "int8"; throws listing them
std::string kv_storage_name(KvStorage s);
int64_t kv_storage_elem_bytes(KvStorage s);  // 4, 2, 1

// float -> bfloat16 bits (round to nearest even, NaN stays NaN) and back.
uint16_t to_bf16(float x);
float from_bf16(uint16_t b);

class KvCache {
 public:
  // Linear cache. Every size >= 1. Throws for sizes < 1 or a byte count that overflows.
  KvCache(int64_t batch, int64_t kv_heads, int64_t capacity, int64_t d, int64_t d_v, KvStorage storage);
  // Ring cache keeping the last `slots` positions. Throws like the constructor (slots < 1 named
  // "slots").
  static KvCache ring(int64_t batch, int64_t kv_heads, int64_t slots, int64_t d, int64_t d_v, KvStorage storage);

  KvCache(KvCache&&) noexcept;
  KvCache& operator=(KvCache&&) noexcept;
  ~KvCache();

  // Appends t >= 1 new positions: k [B, H_kv, t, d], v [B, H_kv, t, d_v] (any strides with a
  // contiguous last axis). Throws (writing nothing) on a shape mismatch, a null pointer, for a
  // linear cache size() + t > capacity(), or for int8 storage a NaN or infinity among the stored
  // elements (an int8 row cannot represent one; f32 and bf16 store it, and it propagates to the
  // outputs that attend to it).
  void append(ConstView k, ConstView v);
  // Forgets every position (size() = 0); keeps the memory.
  void clear();

  int64_t size() const { return size_; }      // positions appended so far (since clear())
  int64_t stored() const { return size_ < slots_ ? size_ : slots_; }
  int64_t oldest() const { return size_ - stored(); }  // first position still held
  int64_t capacity() const { return slots_; }  // slots (= the capacity of a linear cache)
  bool is_ring() const { return ring_; }
  int64_t batch() const { return batch_; }
  int64_t kv_heads() const { return kv_heads_; }
  int64_t d() const { return d_; }
  int64_t d_v() const { return d_v_; }
  KvStorage storage() const { return storage_; }
  // Bytes of memory the cache holds (every slot, keys, values and scales).
  int64_t bytes() const;
  // Bytes one key row / value row occupies (elements plus, int8, its scale).
  int64_t key_row_bytes() const;
  int64_t value_row_bytes() const;

  // Slot of position p (p in [oldest(), size())).
  int64_t slot(int64_t p) const { return ring_ ? p % slots_ : p; }

  // Raw access for kernels: the first row of (b, g); rows are d (keys) / d_v (values) elements of
  // the storage type apart, capacity() rows in all. Scales are null unless int8. Throws
  // attnkit::Error for b outside [0, batch()) or g outside [0, kv_heads()).
  const void* keys(int64_t b, int64_t g) const;
  const void* values(int64_t b, int64_t g) const;
  const float* key_scales(int64_t b, int64_t g) const;
  const float* value_scales(int64_t b, int64_t g) const;

  // Dequantised row of position p (held now) of (b, g) into out (d or d_v floats). Throws for an
  // index out of range.
  void key(int64_t b, int64_t g, int64_t p, float* out) const;
  void value(int64_t b, int64_t g, int64_t p, float* out) const;

 private:
  KvCache(int64_t batch, int64_t kv_heads, int64_t slots, int64_t d, int64_t d_v, KvStorage storage, bool ring);
  void check_head(int64_t b, int64_t g) const;  // b in [0, batch), g in [0, kv_heads)
  void check_row(int64_t b, int64_t g, int64_t p) const;  // check_head, and p held now

  struct Buffers;
  std::unique_ptr<Buffers> buf_;
  int64_t batch_, kv_heads_, slots_, d_, d_v_;
  KvStorage storage_;
  bool ring_;
  int64_t size_ = 0;
};

}  // namespace attnkit
