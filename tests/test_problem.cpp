#include <catch2/catch.hpp>

#include "support.hpp"

using namespace attnkit;
using attnkit::test::Owned;

TEST_CASE("validate accepts well-formed problems and reports sizes", "[problem]") {
  Owned o(2, 8, 2, 5, 7, 16, 8, 1);
  const Shape d = o.p.validate();
  CHECK(d.batch == 2);
  CHECK(d.heads == 8);
  CHECK(d.kv_heads == 2);
  CHECK(d.group() == 4);
  CHECK(d.n_q == 5);
  CHECK(d.n_k == 7);
  CHECK(d.d == 16);
  CHECK(d.d_v == 8);
  CHECK(o.p.effective_scale() == Approx(0.25));
}

TEST_CASE("validate names the bad argument", "[problem]") {
  auto expect = [](auto mutate, const char* msg) {
    Owned o(2, 4, 2, 5, 7, 16, 8, 1);
    mutate(o.p);
    CHECK_THROWS_WITH(o.p.validate(), Catch::Contains(msg));
  };
  expect([](Problem& p) { p.q.data = nullptr; }, "q: data is null");
  expect([](Problem& p) { p.k.shape[1] = 3; p.v.shape[1] = 3; }, "divisor of q's heads");
  expect([](Problem& p) { p.k.shape[3] = 3; }, "k: dim is 3");
  expect([](Problem& p) { p.v.shape[2] = 6; }, "v: seq is 6");
  expect([](Problem& p) { p.out.shape[3] = 16; }, "out: dim is 16");
  expect([](Problem& p) { p.out.shape[2] = 4; }, "out: seq is 4");
  expect([](Problem& p) { p.q.shape[2] = 0; }, "q: seq size is 0");
  expect([](Problem& p) { p.q.shape[0] = -1; }, "q: batch size is -1");
  expect([](Problem& p) { p.k.stride[3] = 2; }, "k: dim stride is 2");
  expect([](Problem& p) { p.v.stride[1] = -5; }, "v: heads stride is -5");
  expect([](Problem& p) { p.q.shape[2] = int64_t{1} << 62; }, "overflow");
  expect([](Problem& p) { p.scale = 0.0f; }, "scale");
  expect([](Problem& p) { p.scale = INFINITY; }, "scale");
  expect([](Problem& p) { p.mask.key_lengths = {1}; }, "one per batch");
  expect([](Problem& p) { p.mask.key_lengths = {1, -1}; }, "key_lengths[1]: -1");
  expect([](Problem& p) { p.mask.key_lengths = {8, 1}; }, "key_lengths[0]: 8");
  expect([](Problem& p) { p.out.data = const_cast<float*>(p.v.data); p.out.shape = p.out.shape; }, "overlaps v");
  expect([](Problem& p) { p.out.stride[2] = 0; }, "makes elements overlap");
  expect([](Problem& p) { p.out.stride[2] = 4; }, "makes elements overlap");  // rows overlap by half
  expect([](Problem& p) { p.out.stride[1] = 8; }, "makes elements overlap");  // head h+1 = row i+1 of h
  expect([](Problem& p) { p.out.stride[0] = 100; }, "makes elements overlap");
}

TEST_CASE("validate accepts every non-overlapping output layout it should", "[problem]") {
  Owned o(2, 4, 2, 5, 7, 16, 8, 1);
  Tensor big(1, 1, 1, 2 * 5 * 4 * 8 * 2);
  o.p.out.data = big.data();
  o.p.out.stride = {160, 8, 32, 1};  // [B, N, H, D]
  CHECK_NOTHROW(o.p.validate());
  o.p.out.stride = {320, 16, 64, 1};  // gaps between rows and heads
  CHECK_NOTHROW(o.p.validate());
  o.p.out.stride = {40, 10, 80, 1};  // batch inside the heads of a row
  CHECK_NOTHROW(o.p.validate());
  Owned one(1, 1, 1, 1, 7, 16, 8, 1);  // axes of size 1: any stride
  one.p.out.stride = {0, 0, 0, 1};
  CHECK_NOTHROW(one.p.validate());
}

TEST_CASE("key_end: causal bottom-right alignment and padding", "[problem]") {
  Owned o(2, 1, 1, 4, 6, 2, 2, 1);
  o.p.mask.causal = true;
  CHECK(o.p.key_end(0, 0) == 3);
  CHECK(o.p.key_end(0, 3) == 6);
  o.p.mask.key_lengths = {2, 6};
  CHECK(o.p.key_end(0, 3) == 2);
  CHECK(o.p.key_end(1, 1) == 4);
  Owned x(1, 1, 1, 6, 4, 2, 2, 1);
  x.p.mask.causal = true;
  CHECK(x.p.key_end(0, 0) == 0);
  CHECK(x.p.key_end(0, 1) == 0);
  CHECK(x.p.key_end(0, 2) == 1);
}
