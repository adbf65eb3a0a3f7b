// OnednnAttention against the unfused computation written out: Q x K, scale, mask, softmax over
// the last axis, x V (double accumulation).
#include <gtest/gtest.h>

#include <cmath>

#include "engine/kernels/onednn/onednn_ops.h"
#include "reference_ops.h"

namespace moss::engine::onednn {
namespace {

using testing::count;
using testing::expect_close;
using testing::random_floats;

// q [b, m, d], k [b, d, n], v [b, n, dv]; mask (may be null) indexed through mask_at(b, i, j).
template <typename MaskAt>
std::vector<float> reference(int64_t b, int64_t m, int64_t d, int64_t n, int64_t dv,
                             const std::vector<float>& q, const std::vector<float>& k,
                             const std::vector<float>& v, float scale, MaskAt mask_at) {
  std::vector<float> y(static_cast<size_t>(b * m * dv));
  std::vector<double> s(static_cast<size_t>(n));
  for (int64_t h = 0; h < b; ++h) {
    for (int64_t i = 0; i < m; ++i) {
      double mx = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t t = 0; t < d; ++t) acc += double(q[(h * m + i) * d + t]) * k[(h * d + t) * n + j];
        s[j] = acc * scale + mask_at(h, i, j);
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) sum += s[j] = std::exp(s[j] - mx);
      for (int64_t c = 0; c < dv; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < n; ++j) acc += s[j] / sum * v[(h * n + j) * dv + c];
        y[(h * m + i) * dv + c] = static_cast<float>(acc);
      }
    }
  }
  return y;
}

TEST(OnednnAttentionTest, BroadcastRuntimeMaskMatchesReference) {
  // BERT: [1, 4 heads, 12, 8] with a padding mask [1, 1, 1, 12] computed at run time.
  AttentionParams p;
  p.q_dims = {1, 4, 12, 8};
  p.k_dims = {1, 4, 8, 12};
  p.v_dims = {1, 4, 12, 8};
  p.scale = 1.f / std::sqrt(8.f);
  p.mask_dims = {1, 1, 1, 12};
  auto q = random_floats(count(p.q_dims), 1), k = random_floats(count(p.k_dims), 2);
  auto v = random_floats(count(p.v_dims), 3);
  std::vector<float> mask(12, 0.f);
  for (int j = 9; j < 12; ++j) mask[j] = -10000.f;
  auto a = OnednnAttention::create(p, nullptr).value_or_die();
  EXPECT_EQ(a->dst_dims(), (Dims{1, 4, 12, 8}));
  EXPECT_EQ(a->weights_bytes(), 0u);
  OnednnScratch scratch = OnednnScratch::create().value_or_die();
  std::vector<float> y(static_cast<size_t>(count(a->dst_dims())));
  ASSERT_TRUE(a->execute(q.data(), k.data(), v.data(), mask.data(), y.data(), scratch).ok());
  expect_close(y, reference(4, 12, 8, 12, 8, q, k, v, p.scale,
                            [&](int64_t, int64_t, int64_t j) { return double(mask[j]); }));
  // A run-time mask is required.
  EXPECT_FALSE(a->execute(q.data(), k.data(), v.data(), nullptr, y.data(), scratch).ok());
}

TEST(OnednnAttentionTest, ConstantCausalMaskAndRectangularShapesMatchReference) {
  // M != N and Dv != D; a constant [M, N] -inf mask above the diagonal, packed at create().
  AttentionParams p;
  p.q_dims = {3, 5, 6};
  p.k_dims = {3, 6, 7};
  p.v_dims = {3, 7, 4};
  p.scale = 0.5f;
  p.mask_dims = {5, 7};
  std::vector<float> mask(35);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 7; ++j) mask[i * 7 + j] = j <= i + 2 ? 0.f : -INFINITY;
  auto q = random_floats(count(p.q_dims), 4), k = random_floats(count(p.k_dims), 5);
  auto v = random_floats(count(p.v_dims), 6);
  auto a = OnednnAttention::create(p, mask.data()).value_or_die();
  // [M, N] over [3, M, N] is not a broadcast oneDNN's fast matmul takes: expanded once.
  EXPECT_EQ(a->weights_bytes(), 3 * 35 * sizeof(float));
  OnednnScratch scratch = OnednnScratch::create().value_or_die();
  std::vector<float> y(static_cast<size_t>(count(a->dst_dims())));
  ASSERT_TRUE(a->execute(q.data(), k.data(), v.data(), nullptr, y.data(), scratch).ok());
  expect_close(y, reference(3, 5, 6, 7, 4, q, k, v, p.scale, [&](int64_t, int64_t i, int64_t j) {
                 return double(mask[i * 7 + j]);
               }));
}

TEST(OnednnAttentionTest, MaskBroadcastOverBatchOnlyMatchesReference) {
  // Swin: a [1, heads, M, N] bias over [windows, heads, M, N]. oneDNN's fast matmul has no such
  // broadcast: a constant mask is expanded once; a run-time one is either declined or exact.
  AttentionParams p;
  p.q_dims = {3, 2, 7, 4};
  p.k_dims = {3, 2, 4, 7};
  p.v_dims = {3, 2, 7, 4};
  p.scale = 0.5f;
  p.mask_dims = {1, 2, 7, 7};
  auto q = random_floats(count(p.q_dims), 7), k = random_floats(count(p.k_dims), 8);
  auto v = random_floats(count(p.v_dims), 9), mask = random_floats(98, 10, -3.f, 3.f);
  auto want = reference(6, 7, 4, 7, 4, q, k, v, p.scale, [&](int64_t h, int64_t i, int64_t j) {
    return double(mask[((h % 2) * 7 + i) * 7 + j]);
  });
  OnednnScratch scratch = OnednnScratch::create().value_or_die();
  std::vector<float> y(static_cast<size_t>(count(p.q_dims)));
  auto constant = OnednnAttention::create(p, mask.data()).value_or_die();
  ASSERT_TRUE(constant->execute(q.data(), k.data(), v.data(), nullptr, y.data(), scratch).ok());
  expect_close(y, want);
  auto runtime = OnednnAttention::create(p, nullptr);
  if (runtime.ok()) {
    ASSERT_TRUE((*runtime)->execute(q.data(), k.data(), v.data(), mask.data(), y.data(), scratch).ok());
    expect_close(y, want);
  } else {
    EXPECT_EQ(runtime.status().code(), ErrorCode::kUnimplemented);
  }
}

TEST(OnednnAttentionTest, RejectsMismatchedShapes) {
  AttentionParams p;
  p.q_dims = {2, 4, 8};
  p.k_dims = {2, 7, 4};  // inner dim 7 != 8
  p.v_dims = {2, 4, 8};
  EXPECT_FALSE(OnednnAttention::create(p, nullptr).ok());
  p.k_dims = {2, 8, 4};
  p.v_dims = {1, 4, 8};  // batch differs
  EXPECT_FALSE(OnednnAttention::create(p, nullptr).ok());
  p.v_dims = {2, 4, 8};
  p.mask_dims = {3, 4};  // does not broadcast to [2, 4, 4]
  EXPECT_FALSE(OnednnAttention::create(p, nullptr).ok());
  p.mask_dims.clear();
  EXPECT_TRUE(OnednnAttention::create(p, nullptr).ok());
}

}  // namespace
}  // namespace moss::engine::onednn
