// Which global positions each rank holds (contiguous or zigzag), see attnkit/ring.hpp.
#include "attnkit/error.hpp"
#include "attnkit/ring.hpp"

namespace attnkit {

RingLayout parse_ring_layout(const std::string& name) {
  if (name == "contiguous") return RingLayout::Contiguous;
  if (name == "zigzag") return RingLayout::Zigzag;
  detail::fail("ring: layout '", name, "'; expected contiguous or zigzag");
}

const char* ring_layout_name(RingLayout layout) {
  return layout == RingLayout::Zigzag ? "zigzag" : "contiguous";
}

RingRows ring_rows(int64_t n, int rank, int ranks, RingLayout layout) {
  if (ranks < 1) detail::fail("ring: ranks=", ranks, "; expected >= 1");
  if (rank < 0 || rank >= ranks) detail::fail("ring: rank=", rank, "; expected 0..", ranks - 1);
  if (n < 1) detail::fail("ring: n=", n, "; expected >= 1");
  RingRows r;
  if (layout == RingLayout::Contiguous) {
    if (n < ranks) detail::fail("ring: n=", n, " over ", ranks, " ranks; expected n >= ", ranks, " (a row on every rank)");
    // r·n/P in integer arithmetic: sizes differ by at most one row, the first ranks get fewer.
    r.begin[0] = n * rank / ranks;
    r.end[0] = n * (rank + 1) / ranks;
    r.begin[1] = r.end[1] = r.end[0];
    return r;
  }
  const int64_t chunks = 2 * int64_t{ranks};
  if (n < chunks) detail::fail("ring: n=", n, " with the zigzag layout over ", ranks, " ranks; expected n >= ", chunks);
  const auto edge = [&](int64_t c) { return n * c / chunks; };
  r.begin[0] = edge(rank);
  r.end[0] = edge(rank + 1);
  r.begin[1] = edge(chunks - 1 - rank);
  r.end[1] = edge(chunks - rank);
  return r;
}

}  // namespace attnkit
