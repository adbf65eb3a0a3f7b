// OnednnPool, OnednnBatchNorm and OnednnReorder against reference loops.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/kernels/onednn/onednn_ops.h"
#include "reference_ops.h"

namespace moss::engine::onednn {
namespace {

using testing::count;
using testing::expect_close;
using testing::random_floats;

PoolParams pool(PoolParams::Kind kind, Dims kernel, Dims strides, Dims pb, Dims pe, Dims dil,
                bool ceil, bool include_pad) {
  PoolParams p;
  p.kind = kind;
  p.src_dims = {1, 5, 11, 12};
  p.kernel = std::move(kernel);
  p.strides = std::move(strides);
  p.pads_begin = std::move(pb);
  p.pads_end = std::move(pe);
  p.dilations = std::move(dil);
  p.ceil_mode = ceil;
  p.count_include_pad = include_pad;
  return p;
}

TEST(OnednnPoolTest, MatchesReferenceAcrossAttributes) {
  // Max and average pooling with pads, strides, ceil_mode, dilations and both padding counts.
  using K = PoolParams::Kind;
  const std::vector<PoolParams> cases = {
      pool(K::kMax, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {}, false, false),
      pool(K::kMax, {3, 3}, {2, 2}, {0, 0}, {0, 0}, {}, true, false),
      pool(K::kMax, {2, 3}, {1, 2}, {1, 0}, {0, 2}, {2, 2}, false, false),
      pool(K::kMax, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {2, 1}, true, false),
      pool(K::kAverage, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {}, false, false),
      pool(K::kAverage, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {}, false, true),
      pool(K::kAverage, {2, 2}, {2, 2}, {0, 0}, {0, 0}, {}, true, false),
      pool(K::kAverage, {3, 2}, {1, 1}, {0, 1}, {2, 0}, {}, false, true),
      pool(K::kAverage, {}, {}, {}, {}, {}, false, false),  // GlobalAveragePool
      pool(K::kMax, {}, {}, {}, {}, {}, false, false),      // GlobalMaxPool
  };
  OnednnScratch scratch = OnednnScratch::create().value_or_die();
  uint32_t seed = 40;
  for (const PoolParams& p : cases) {
    SCOPED_TRACE(::testing::Message() << "case seed " << seed);
    auto x = random_floats(count(p.src_dims), ++seed);
    auto k = OnednnPool::create(p);
    ASSERT_TRUE(k.ok()) << k.status().to_string();
    std::vector<float> y(static_cast<size_t>(count((*k)->dst_dims())));
    ASSERT_TRUE((*k)->execute(x.data(), y.data(), scratch).ok());
    expect_close(y, testing::ref_pool(p, (*k)->dst_dims(), x.data()));
  }
}

TEST(OnednnPoolTest, CeilModeDropsWindowStartingInPadding) {
  // in 5, kernel 2, stride 2, pads 1+1, ceil: a 4th window would start in the end pad -> 3 outputs.
  PoolParams p;
  p.src_dims = {1, 1, 5, 5};
  p.kernel = {2, 2};
  p.strides = {2, 2};
  p.pads_begin = {1, 1};
  p.pads_end = {1, 1};
  p.ceil_mode = true;
  auto k = OnednnPool::create(p).value_or_die();
  EXPECT_EQ(k->dst_dims(), (Dims{1, 1, 3, 3}));
}

TEST(OnednnPoolTest, IncludePadWithCeilOverhangFallsBack) {
  // oneDNN would count the ceil_mode overhang as padding; we refuse rather than be wrong.
  auto p = pool(PoolParams::Kind::kAverage, {2, 2}, {2, 2}, {0, 0}, {0, 0}, {}, true, true);
  EXPECT_EQ(OnednnPool::create(p).status().code(), ErrorCode::kUnimplemented);
}

TEST(OnednnBatchNormTest, InferenceMatchesFormulaWithAndWithoutRelu) {
  // y = (x - mean) / sqrt(var + eps) * scale + bias, optionally followed by Relu.
  BatchNormParams p;
  p.src_dims = {2, 6, 5, 4};
  p.epsilon = 1e-3f;
  auto x = random_floats(count(p.src_dims), 50);
  auto sc = random_floats(6, 51), bi = random_floats(6, 52), mean = random_floats(6, 53);
  auto var = random_floats(6, 54, 0.1f, 2.f);
  OnednnScratch scratch = OnednnScratch::create().value_or_die();
  for (bool relu : {false, true}) {
    if (relu) p.options.post_ops = {{PostOp::Kind::kRelu}};
    auto k =
        OnednnBatchNorm::create(p, sc.data(), bi.data(), mean.data(), var.data()).value_or_die();
    std::vector<float> y(x.size()), want(x.size());
    ASSERT_TRUE(k->execute(x.data(), y.data(), scratch).ok());
    for (size_t i = 0; i < x.size(); ++i) {
      const size_t c = (i / 20) % 6;
      float v = (x[i] - mean[c]) / std::sqrt(var[c] + p.epsilon) * sc[c] + bi[c];
      want[i] = relu ? std::max(v, 0.f) : v;
    }
    expect_close(y, want);
  }
}

TEST(OnednnReorderTest, PlainToBlockedAndBackIsExact) {
  // A round trip through a conv's blocked layout returns the exact input bits.
  ConvParams p;
  p.src_dims = {1, 24, 7, 7};
  p.weight_dims = {32, 24, 1, 1};
  p.src = LayoutChoice::any();
  p.dst = LayoutChoice::any();
  std::vector<float> w(32 * 24, 0.5f);
  auto conv = OnednnConv::create(p, w.data(), nullptr).value_or_die();
  Layout plain = Layout::plain(p.src_dims).value_or_die();
  EXPECT_TRUE(plain.is_plain());
  auto there = OnednnReorder::create(plain, conv->src_layout()).value_or_die();
  auto back = OnednnReorder::create(conv->src_layout(), plain).value_or_die();
  auto x = random_floats(count(p.src_dims), 60);
  std::vector<float> blocked(conv->src_layout().bytes() / 4), y(x.size());
  OnednnScratch scratch = OnednnScratch::create().value_or_die();
  ASSERT_TRUE(there->execute(x.data(), blocked.data(), scratch).ok());
  ASSERT_TRUE(back->execute(blocked.data(), y.data(), scratch).ok());
  EXPECT_EQ(x, y);
  EXPECT_FALSE(OnednnReorder::create(plain, Layout::plain(Dims{1, 24, 7, 8}).value_or_die()).ok());
}

}  // namespace
}  // namespace moss::engine::onednn
