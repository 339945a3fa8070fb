#include <catch2/catch.hpp>
#include <cmath>

#include "support.hpp"

using namespace attnkit;

TEST_CASE("generated families are deterministic and have their structure", "[inputs]") {
  for (const std::string& name : input_family_names()) {
    const InputFamily f = parse_input_family(name);
    CHECK(input_family_name(f) == name);
    Inputs a = generate(f, 1, 2, 64, 16, 3), b = generate(f, 1, 2, 64, 16, 3), c = generate(f, 1, 2, 64, 16, 4);
    CHECK(std::equal(a.q.data(), a.q.data() + a.q.numel(), b.q.data()));
    CHECK_FALSE(std::equal(a.q.data(), a.q.data() + a.q.numel(), c.q.data()));
  }
  CHECK_THROWS_WITH(parse_input_family("uniform"), Catch::Contains("gaussian, diffuse"));
  CHECK_THROWS_AS(generate(InputFamily::Gaussian, 1, 1, 0, 4, 0), Error);
}

TEST_CASE("local family concentrates attention near the diagonal", "[inputs]") {
  Inputs in = generate(InputFamily::Local, 1, 1, 512, 64, 1);
  Tensor out(1, 1, 512, 64);
  Problem p{in.q.view(), in.k.view(), in.v.view(), out.view(), {}, {}};
  std::vector<float> w(512 * 512);
  ReferenceBackend().weights(p, 0, 0, w.data());
  double near = 0;
  for (int64_t i = 0; i < 512; ++i)
    for (int64_t j = std::max<int64_t>(0, i - 32); j <= std::min<int64_t>(511, i + 32); ++j) near += w[i * 512 + j];
  CHECK(near / 512 > 0.5);  // uniform attention would put 65/512 = 0.13 there
}
