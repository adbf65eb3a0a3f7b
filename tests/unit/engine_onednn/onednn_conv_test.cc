// OnednnConv against the naive reference loop over the geometries real models use.
#include <gtest/gtest.h>

#include "engine/kernels/onednn/onednn_ops.h"
#include "reference_ops.h"

namespace moss::engine::onednn {
namespace {

using testing::count;
using testing::expect_close;
using testing::random_floats;

struct ConvCase {
  const char* name;
  ConvParams p;
};

OnednnScratch make_scratch() { return OnednnScratch::create().value_or_die(); }

// Runs the kernel with plain in/out and compares with the reference.
void check_conv(const ConvParams& p, uint32_t seed) {
  auto x = random_floats(count(p.src_dims), seed);
  auto w = random_floats(count(p.weight_dims), seed + 1);
  auto b = random_floats(p.weight_dims[0], seed + 2);
  auto conv = OnednnConv::create(p, w.data(), p.has_bias ? b.data() : nullptr);
  ASSERT_TRUE(conv.ok()) << conv.status().to_string();
  const Dims& out = (*conv)->dst_dims();
  std::vector<float> residual;
  bool has_residual = false;
  for (const PostOp& op : p.options.post_ops) has_residual |= op.kind == PostOp::Kind::kAddResidual;
  if (has_residual) residual = random_floats(count(out), seed + 3);
  std::vector<float> y(static_cast<size_t>(count(out)));
  OnednnScratch scratch = make_scratch();
  ASSERT_TRUE(
      (*conv)->execute(x.data(), y.data(), has_residual ? residual.data() : nullptr, scratch).ok());
  auto want = testing::ref_conv(p, out, x.data(), w.data(), p.has_bias ? b.data() : nullptr,
                                has_residual ? residual.data() : nullptr);
  expect_close(y, want);
}

ConvParams conv2d(Dims src, Dims w, Dims strides, Dims pb, Dims pe, Dims dil, int64_t group,
                  std::vector<PostOp> post = {}) {
  ConvParams p;
  p.src_dims = std::move(src);
  p.weight_dims = std::move(w);
  p.strides = std::move(strides);
  p.pads_begin = std::move(pb);
  p.pads_end = std::move(pe);
  p.dilations = std::move(dil);
  p.group = group;
  p.has_bias = true;
  p.options.post_ops = std::move(post);
  return p;
}

TEST(OnednnConvTest, MatchesReferenceAcrossGeometries) {
  // Every geometry family (3x3 padded, strided, dilated, asymmetric pads, 1x1, grouped, depthwise,
  // 1-D) matches the reference loop within 1e-4 relative.
  const std::vector<ConvCase> cases = {
      {"3x3 pad 1", conv2d({1, 16, 14, 14}, {32, 16, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1)},
      {"3x3 stride 2", conv2d({2, 8, 15, 15}, {16, 8, 3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 1)},
      {"dilation 2", conv2d({1, 8, 16, 16}, {8, 8, 3, 3}, {1, 1}, {2, 2}, {2, 2}, {2, 2}, 1)},
      {"asymmetric pads", conv2d({1, 4, 9, 11}, {6, 4, 3, 2}, {1, 2}, {0, 1}, {2, 0}, {1, 1}, 1)},
      {"7x7 stride 2 stem",
       conv2d({1, 3, 32, 32}, {16, 3, 7, 7}, {2, 2}, {3, 3}, {3, 3}, {1, 1}, 1)},
      {"1x1", conv2d({1, 64, 7, 7}, {128, 64, 1, 1}, {1, 1}, {0, 0}, {0, 0}, {1, 1}, 1)},
      {"1x1 stride 2", conv2d({1, 32, 8, 8}, {64, 32, 1, 1}, {2, 2}, {0, 0}, {0, 0}, {1, 1}, 1)},
      {"grouped", conv2d({1, 16, 10, 10}, {32, 4, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 4)},
      {"depthwise", conv2d({1, 32, 14, 14}, {32, 1, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 32)},
      {"depthwise s2", conv2d({1, 24, 15, 15}, {24, 1, 3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 24)},
      {"depthwise x2", conv2d({1, 8, 9, 9}, {16, 1, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 8)},
  };
  uint32_t seed = 1;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    check_conv(c.p, seed += 10);
  }
}

TEST(OnednnConvTest, OneDimensionalConvMatchesReference) {
  // Conv1d (rank-3 input) with stride, pads and dilation.
  ConvParams p;
  p.src_dims = {2, 6, 20};
  p.weight_dims = {4, 3, 4};
  p.group = 2;
  p.strides = {2};
  p.pads_begin = {1};
  p.pads_end = {2};
  p.dilations = {2};
  check_conv(p, 77);
}

TEST(OnednnConvTest, FusedPostOpsMatchReference) {
  // Each fused activation, and residual add followed by Relu (ResNet's block end).
  const std::vector<std::vector<PostOp>> posts = {
      {{PostOp::Kind::kRelu}},
      {{PostOp::Kind::kClip, 0.f, 6.f}},
      {{PostOp::Kind::kSigmoid}},
      {{PostOp::Kind::kHardSwish}},
      {{PostOp::Kind::kHardSigmoid, 0.2f, 0.5f}},
      {{PostOp::Kind::kLeakyRelu, 0.1f}},
      {{PostOp::Kind::kTanh}},
      {{PostOp::Kind::kAddResidual}, {PostOp::Kind::kRelu}},
      {{PostOp::Kind::kAddResidual}},
  };
  uint32_t seed = 500;
  for (const auto& post : posts) {
    SCOPED_TRACE(static_cast<int>(post[0].kind));
    check_conv(conv2d({1, 8, 8, 8}, {16, 8, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1, post),
               seed += 10);
  }
}

TEST(OnednnConvTest, PlainRequestsWithSixteenChannelMultiplesMatchReference) {
  // Channels in multiples of 16 between plain neighbours convolve in 16-channel blocks inside the
  // kernel (where the host has such a JIT kernel); the caller still sees plain tensors.
  ConvParams unet = conv2d({1, 32, 12, 12}, {16, 32, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1);
  ConvParams residual = conv2d({1, 16, 9, 9}, {32, 16, 1, 1}, {1, 1}, {0, 0}, {0, 0}, {1, 1}, 1,
                               {{PostOp::Kind::kAddResidual}, {PostOp::Kind::kRelu}});
  ConvParams text;  // a text CNN's Conv1d
  text.src_dims = {1, 32, 40};
  text.weight_dims = {16, 32, 5};
  text.has_bias = true;
  text.options.post_ops = {{PostOp::Kind::kRelu}};
  ConvParams strided = conv2d({2, 48, 11, 10}, {16, 48, 3, 3}, {2, 2}, {1, 0}, {1, 2}, {1, 1}, 1);
  uint32_t seed = 900;
  for (const ConvParams& p : {unet, residual, text, strided}) {
    SCOPED_TRACE(seed);
    check_conv(p, seed += 10);
    auto conv = OnednnConv::create(p, random_floats(count(p.weight_dims), 1).data(),
                                   random_floats(p.weight_dims[0], 2).data());
    ASSERT_TRUE(conv.ok());
    EXPECT_TRUE((*conv)->src_layout().is_plain());
    EXPECT_TRUE((*conv)->dst_layout().is_plain());
  }
}

TEST(OnednnConvTest, BlockedChainMatchesPlainChain) {
  // Two convs chained in oneDNN's chosen blocked layout, with reorders only at the edges, give the
  // same numbers as the plain-layout chain.
  ConvParams a = conv2d({1, 32, 14, 14}, {64, 32, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1,
                        {{PostOp::Kind::kRelu}});
  ConvParams b = conv2d({1, 64, 14, 14}, {64, 64, 1, 1}, {1, 1}, {0, 0}, {0, 0}, {1, 1}, 1,
                        {{PostOp::Kind::kAddResidual}, {PostOp::Kind::kRelu}});
  auto x = random_floats(count(a.src_dims), 3);
  auto wa = random_floats(count(a.weight_dims), 4), ba = random_floats(64, 5);
  auto wb = random_floats(count(b.weight_dims), 6), bb = random_floats(64, 7);
  OnednnScratch scratch = make_scratch();

  auto pa = OnednnConv::create(a, wa.data(), ba.data()).value_or_die();
  auto pb = OnednnConv::create(b, wb.data(), bb.data()).value_or_die();
  std::vector<float> mid(64 * 14 * 14), plain_out(64 * 14 * 14);
  ASSERT_TRUE(pa->execute(x.data(), mid.data(), nullptr, scratch).ok());
  ASSERT_TRUE(pb->execute(mid.data(), plain_out.data(), mid.data(), scratch).ok());

  a.src = LayoutChoice::any();
  a.dst = LayoutChoice::any();
  auto ka = OnednnConv::create(a, wa.data(), ba.data()).value_or_die();
  b.src = LayoutChoice::exactly(ka->dst_layout());
  b.residual_layout = ka->dst_layout();
  auto kb = OnednnConv::create(b, wb.data(), bb.data()).value_or_die();
  EXPECT_EQ(kb->dst_layout(), ka->dst_layout());
  auto plain_in = Layout::plain(a.src_dims).value_or_die();
  auto to_blocked = OnednnReorder::create(plain_in, ka->src_layout()).value_or_die();
  auto to_plain =
      OnednnReorder::create(kb->dst_layout(), Layout::plain(kb->dst_dims()).value_or_die())
          .value_or_die();
  std::vector<float> xin(ka->src_layout().bytes() / 4), bmid(ka->dst_layout().bytes() / 4),
      bout(kb->dst_layout().bytes() / 4), out(plain_out.size());
  ASSERT_TRUE(to_blocked->execute(x.data(), xin.data(), scratch).ok());
  ASSERT_TRUE(ka->execute(xin.data(), bmid.data(), nullptr, scratch).ok());
  ASSERT_TRUE(kb->execute(bmid.data(), bout.data(), bmid.data(), scratch).ok());
  ASSERT_TRUE(to_plain->execute(bout.data(), out.data(), scratch).ok());
  expect_close(out, plain_out);
}

TEST(OnednnConvTest, RejectsInconsistentShapes) {
  // Channels that do not divide into groups and a kernel larger than the padded input are
  // invalid-argument errors, not crashes.
  ConvParams p = conv2d({1, 6, 8, 8}, {8, 4, 3, 3}, {1, 1}, {0, 0}, {0, 0}, {1, 1}, 2);
  std::vector<float> w(8 * 4 * 9), b(8);
  auto r = OnednnConv::create(p, w.data(), b.data());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  ConvParams q = conv2d({1, 4, 2, 2}, {4, 4, 5, 5}, {1, 1}, {0, 0}, {0, 0}, {1, 1}, 1);
  std::vector<float> w2(4 * 4 * 25);
  EXPECT_EQ(OnednnConv::create(q, w2.data(), b.data()).status().code(),
            ErrorCode::kInvalidArgument);
}

TEST(OnednnConvTest, MissingResidualIsAnError) {
  // A kernel with a fused residual add refuses to run without the residual tensor.
  ConvParams p = conv2d({1, 4, 4, 4}, {4, 4, 1, 1}, {1, 1}, {0, 0}, {0, 0}, {1, 1}, 1,
                        {{PostOp::Kind::kAddResidual}});
  std::vector<float> w(16, 1.f), b(4), x(64), y(64);
  auto conv = OnednnConv::create(p, w.data(), b.data()).value_or_die();
  OnednnScratch scratch = make_scratch();
  EXPECT_EQ(conv->execute(x.data(), y.data(), nullptr, scratch).code(),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace moss::engine::onednn
