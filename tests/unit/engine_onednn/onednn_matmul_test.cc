// OnednnMatmul (MatMul and Gemm) against the naive reference loop.
#include <gtest/gtest.h>

#include "engine/kernels/onednn/onednn_ops.h"
#include "reference_ops.h"

namespace moss::engine::onednn {
namespace {

using testing::count;
using testing::expect_close;
using testing::random_floats;

// Row-major transpose of a [r, c] matrix.
std::vector<float> transpose(const std::vector<float>& v, int64_t r, int64_t c) {
  std::vector<float> t(v.size());
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j)
      t[static_cast<size_t>(j * r + i)] = v[static_cast<size_t>(i * c + j)];
  return t;
}

TEST(OnednnMatmulTest, BatchedBroadcastMatchesReference) {
  // [2,1,4,8] x [3,8,5] broadcasts to [2,3,4,5], with B as a run-time input and as a constant.
  MatmulParams p;
  p.a_dims = {2, 1, 4, 8};
  p.b_dims = {3, 8, 5};
  auto a = random_floats(count(p.a_dims), 1), b = random_floats(count(p.b_dims), 2);
  auto want = testing::ref_matmul({2, 1, 4, 8}, {1, 3, 8, 5}, {2, 3, 4, 5}, a.data(), b.data());
  OnednnScratch scratch = OnednnScratch::create().value_or_die();
  for (bool constant : {false, true}) {
    SCOPED_TRACE(constant);
    auto mm = OnednnMatmul::create(p, constant ? b.data() : nullptr, nullptr).value_or_die();
    EXPECT_EQ(mm->dst_dims(), (Dims{2, 3, 4, 5}));
    std::vector<float> y(static_cast<size_t>(count(mm->dst_dims())));
    ASSERT_TRUE(
        mm->execute(a.data(), constant ? nullptr : b.data(), y.data(), nullptr, scratch).ok());
    expect_close(y, want);
  }
}

TEST(OnednnMatmulTest, ConstantWeightsFoldBatchWithBiasAndGelu) {
  // BERT's projection: [1,128,64] x const [64,96] + bias [96], then Erf-GELU, then a residual.
  MatmulParams p;
  p.a_dims = {1, 128, 64};
  p.b_dims = {64, 96};
  p.bias_dims = {96};
  p.options.post_ops = {{PostOp::Kind::kGeluErf}, {PostOp::Kind::kAddResidual}};
  auto a = random_floats(count(p.a_dims), 3), b = random_floats(64 * 96, 4);
  auto bias = random_floats(96, 5), res = random_floats(128 * 96, 6);
  auto mm = OnednnMatmul::create(p, b.data(), bias.data()).value_or_die();
  std::vector<float> y(128 * 96);
  OnednnScratch scratch = OnednnScratch::create().value_or_die();
  ASSERT_TRUE(mm->execute(a.data(), nullptr, y.data(), res.data(), scratch).ok());
  auto want = testing::ref_matmul({128, 64}, {64, 96}, {128, 96}, a.data(), b.data());
  for (size_t i = 0; i < want.size(); ++i) {
    want[i] = testing::apply_post(p.options.post_ops, want[i] + bias[i % 96], res[i]);
  }
  expect_close(y, want);
}

TEST(OnednnMatmulTest, GemmTransposesAlphaBetaAndBiasShapes) {
  // Gemm with every transA/transB combination, alpha 0.5, beta 2, and C shaped [N], [M,1], [M,N].
  const int64_t m = 7, k = 12, n = 9;
  auto a = random_floats(m * k, 7), b = random_floats(k * n, 8);
  const auto ref = testing::ref_matmul({m, k}, {k, n}, {m, n}, a.data(), b.data());
  OnednnScratch scratch = OnednnScratch::create().value_or_die();
  for (Dims cdims : {Dims{n}, Dims{m, 1}, Dims{m, n}, Dims{1}}) {
    auto c = random_floats(count(cdims), 9);
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      SCOPED_TRACE(::testing::Message() << "transA " << ta << " transB " << tb << " C rank "
                                        << cdims.size() << " numel " << count(cdims));
      MatmulParams p;
      p.trans_a = ta;
      p.trans_b = tb;
      p.a_dims = ta ? Dims{k, m} : Dims{m, k};
      p.b_dims = tb ? Dims{n, k} : Dims{k, n};
      p.alpha = 0.5f;
      p.beta = 2.f;
      p.bias_dims = cdims;
      auto av = ta ? transpose(a, m, k) : a;
      auto bv = tb ? transpose(b, k, n) : b;
      auto mm = OnednnMatmul::create(p, bv.data(), c.data()).value_or_die();
      std::vector<float> y(m * n);
      ASSERT_TRUE(mm->execute(av.data(), nullptr, y.data(), nullptr, scratch).ok());
      std::vector<float> want(ref.size());
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          const int64_t ci = cdims.size() == 2
                                 ? (cdims[0] == 1 ? 0 : i) * cdims[1] + (cdims[1] == 1 ? 0 : j)
                                 : (cdims[0] == 1 ? 0 : j);
          want[i * n + j] = 0.5f * ref[i * n + j] + 2.f * c[ci];
        }
      expect_close(y, want);
    }
  }
}

TEST(OnednnMatmulTest, OneDimensionalOperandsFollowNumpy) {
  // [K] x [K, N] gives N values; [M, K] x [K] gives M values.
  auto a = random_floats(6, 10), b = random_floats(6 * 4, 11);
  OnednnScratch scratch = OnednnScratch::create().value_or_die();
  MatmulParams p;
  p.a_dims = {6};
  p.b_dims = {6, 4};
  auto mm = OnednnMatmul::create(p, nullptr, nullptr).value_or_die();
  std::vector<float> y(4);
  ASSERT_TRUE(mm->execute(a.data(), b.data(), y.data(), nullptr, scratch).ok());
  expect_close(y, testing::ref_matmul({1, 6}, {6, 4}, {1, 4}, a.data(), b.data()));
  MatmulParams q;
  q.a_dims = {4, 6};
  q.b_dims = {6};
  auto bt = transpose(b, 6, 4);  // any [4, 6] matrix
  auto mq = OnednnMatmul::create(q, nullptr, nullptr).value_or_die();
  std::vector<float> z(4);
  ASSERT_TRUE(mq->execute(bt.data(), a.data(), z.data(), nullptr, scratch).ok());
  expect_close(z, testing::ref_matmul({4, 6}, {6, 1}, {4, 1}, bt.data(), a.data()));
}

TEST(OnednnMatmulTest, RejectsMismatchedAndUnsupportedShapes) {
  // Inner dims that differ are invalid; alpha != 1 with a run-time B asks for the fallback.
  MatmulParams p;
  p.a_dims = {4, 5};
  p.b_dims = {6, 3};
  EXPECT_EQ(OnednnMatmul::create(p, nullptr, nullptr).status().code(), ErrorCode::kInvalidArgument);
  p.b_dims = {5, 3};
  p.alpha = 2.f;
  EXPECT_EQ(OnednnMatmul::create(p, nullptr, nullptr).status().code(), ErrorCode::kUnimplemented);
  p.alpha = 1.f;
  p.a_dims = {2, 4, 5};
  p.b_dims = {3, 5, 3};
  EXPECT_EQ(OnednnMatmul::create(p, nullptr, nullptr).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace moss::engine::onednn
