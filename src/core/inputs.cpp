#include "attnkit/inputs.hpp"

#include <cmath>
#include <random>

#include "attnkit/error.hpp"

namespace attnkit {

const std::vector<std::string>& input_family_names() {
  static const std::vector<std::string> names{"gaussian", "diffuse", "peaky", "local", "clustered"};
  return names;
}

InputFamily parse_input_family(std::string_view name) {
  const auto& n = input_family_names();
  for (size_t i = 0; i < n.size(); ++i)
    if (n[i] == name) return static_cast<InputFamily>(i);
  detail::fail("family '", std::string(name), "': unknown; expected one of gaussian, diffuse, peaky, local, clustered");
}

std::string input_family_name(InputFamily f) { return input_family_names().at(static_cast<size_t>(f)); }

namespace {
void fill_normal(Tensor& t, std::mt19937_64& rng, float sd) {
  std::normal_distribution<float> nd(0.0f, sd);
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = nd(rng);
}
}  // namespace

Inputs generate(InputFamily f, int64_t batch, int64_t heads, int64_t n, int64_t d, uint64_t seed) {
  if (batch < 1 || heads < 1 || n < 1 || d < 1)
    detail::fail("generate: sizes batch=", batch, " heads=", heads, " n=", n, " d=", d, "; expected all >= 1");
  Inputs in{Tensor(batch, heads, n, d), Tensor(batch, heads, n, d), Tensor(batch, heads, n, d)};
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(f) + 1);
  fill_normal(in.v, rng, 1.0f);
  switch (f) {
    case InputFamily::Gaussian:
      fill_normal(in.q, rng, 1.0f);
      fill_normal(in.k, rng, 1.0f);
      break;
    case InputFamily::Diffuse:
      fill_normal(in.q, rng, 0.5f);
      fill_normal(in.k, rng, 0.5f);
      break;
    case InputFamily::Peaky:
      fill_normal(in.q, rng, 2.0f);
      fill_normal(in.k, rng, 2.0f);
      break;
    case InputFamily::Local: {
      // A slowly varying position code shared by q and k: nearby positions have similar codes, so
      // q_i·k_j is largest near j = i. Correlation length ~16 positions.
      fill_normal(in.q, rng, 0.3f);
      fill_normal(in.k, rng, 0.3f);
      std::normal_distribution<float> nd(0.0f, 1.0f);
      const float rho = std::exp(-1.0f / 16.0f), innov = std::sqrt(1.0f - rho * rho);
      // scale * q_i·k_i ≈ amp² · sqrt(d) = 8 at the diagonal, decaying like rho^|i-j| off it.
      const float amp = std::sqrt(8.0f / std::sqrt(static_cast<float>(d)));
      std::vector<float> code(static_cast<size_t>(d));
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t h = 0; h < heads; ++h) {
          for (auto& c : code) c = nd(rng);
          for (int64_t i = 0; i < n; ++i) {
            for (auto& c : code) c = rho * c + innov * nd(rng);
            float* q = in.q.view().row(b, h, i);
            float* k = in.k.view().row(b, h, i);
            for (int64_t c = 0; c < d; ++c) {
              q[c] += amp * code[static_cast<size_t>(c)];
              k[c] += amp * code[static_cast<size_t>(c)];
            }
          }
        }
      break;
    }
    case InputFamily::Clustered: {
      fill_normal(in.k, rng, 1.0f);
      std::normal_distribution<float> nd(0.0f, 1.0f);
      const int64_t centres = 8;
      std::vector<float> c(static_cast<size_t>(centres * d));
      std::uniform_int_distribution<int64_t> pick(0, centres - 1);
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t h = 0; h < heads; ++h) {
          for (auto& x : c) x = 1.5f * nd(rng);
          for (int64_t i = 0; i < n; ++i) {
            const int64_t ci = pick(rng);
            float* q = in.q.view().row(b, h, i);
            for (int64_t x = 0; x < d; ++x) q[x] = c[static_cast<size_t>(ci * d + x)] + 0.1f * nd(rng);
          }
        }
      break;
    }
  }
  return in;
}

}  // namespace attnkit
