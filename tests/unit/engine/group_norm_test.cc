// GroupNorm (kernels/group_norm.h) and the fusion of torch's GroupNorm export into it
// (passes/group_norm_fusion.cc): the fused model agrees with the same export left unfused, the
// fusion declines when an intermediate is read elsewhere, and the kernel's layouts agree.
#include "engine/runtime/execution_context.h"
#include "model_builder.h"

#include <gtest/gtest.h>

#include <cmath>

namespace moss::engine {
namespace {

using testing::ModelBuilder;
using testing::wave;
constexpr int F = onnx::TensorProto::FLOAT;

// torch.nn.GroupNorm(groups, C) as torch 1.13 exports it at opset 17, then SiLU when silu.
// expose: an intermediate that is also a graph output ("m": no fusion; "add": GroupNorm without
// the SiLU), or "".
ModelBuilder torch_group_norm(std::vector<int64_t> x, int64_t groups, bool silu,
                              const std::string& expose = "") {
  const int64_t C = x[1];
  ModelBuilder b(17);
  b.input("x", F, x).output("y");
  if (!expose.empty()) b.output(expose);
  b.init_i("shape3", {3}, {0, groups, -1});
  b.init_f("ones", {groups}, std::vector<float>(groups, 1.f));
  b.init_f("zeros", {groups}, std::vector<float>(groups, 0.f));
  std::vector<int64_t> per_channel(x.size() - 1, 1);
  per_channel[0] = C;
  b.init_f("gamma", per_channel, wave(C, 0.7f, 0.5f, 1.f));
  b.init_f("beta", per_channel, wave(C, 0.3f, 0.4f));
  b.node("Reshape", {"x", "shape3"}, {"r1"});
  ModelBuilder::attr_f(b.node("InstanceNormalization", {"r1", "ones", "zeros"}, {"in"}), "epsilon", 1e-5f);
  b.node("Shape", {"x"}, {"xs"});
  b.node("Reshape", {"in", "xs"}, {"r2"});
  b.node("Mul", {"r2", "gamma"}, {"m"});
  b.node("Add", {"m", "beta"}, {silu ? "add" : "y"});
  if (silu) {
    b.node("Sigmoid", {"add"}, {"s"});
    b.node("Mul", {"add", "s"}, {"y"});
  }
  return b;
}

// The fused node's activation attribute, or -1 when the model has no GroupNorm.
int64_t group_norm_activation(const CompiledModel& m) {
  for (const Node& n : m.graph().nodes) {
    if (n.op_type == "GroupNorm" && n.domain == "com.microsoft") return n.attr_int("activation", -2);
  }
  return -1;
}

Tensor run_y(const std::shared_ptr<const CompiledModel>& m, const Tensor& x) {
  ExecutionContext ctx(m);
  std::vector<NamedTensor> in;
  in.push_back({"x", Tensor::from_bytes(x.dtype(), x.shape(), x.bytes()).value_or_die()});
  auto out = ctx.run(in).value_or_die();
  return std::move(out[0].tensor);
}

Tensor input(std::vector<int64_t> shape) {
  Tensor t = Tensor::zeros(DType::kFloat32, shape).value_or_die();
  auto v = wave(t.numel(), 0.013f, 3.f, 0.5f);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

void expect_close(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) {
    const float u = a.data<float>()[i], v = b.data<float>()[i];
    ASSERT_NEAR(u, v, 1e-5f + 1e-4f * std::fabs(v)) << "element " << i;
  }
}

TEST(EngineGroupNorm, TorchExportFusesAndAgreesWithTheUnfusedNodes) {
  // Spatial sizes off the 16-lane width, and one large enough for the 64-wide loops.
  for (std::vector<int64_t> shape : {std::vector<int64_t>{1, 8, 5, 7}, {2, 32, 16, 16}, {1, 6, 9}}) {
    for (bool silu : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "rank " << shape.size() << " C " << shape[1] << " silu " << silu);
      const int64_t groups = shape[1] / 2;
      auto fused = CompiledModel::compile(torch_group_norm(shape, groups, silu).bytes()).value_or_die();
      auto plain = CompiledModel::compile(torch_group_norm(shape, groups, silu, "m").bytes()).value_or_die();
      EXPECT_EQ(group_norm_activation(*fused), silu ? 1 : 0);
      EXPECT_EQ(group_norm_activation(*plain), -1);  // the Mul's output is read outside the pattern
      const Tensor x = input(shape);
      expect_close(run_y(fused, x), run_y(plain, x));
      if (silu) {  // the Add's output read elsewhere: GroupNorm fuses, the SiLU stays separate
        auto partial = CompiledModel::compile(torch_group_norm(shape, groups, true, "add").bytes()).value_or_die();
        EXPECT_EQ(group_norm_activation(*partial), 0);
        expect_close(run_y(partial, x), run_y(plain, x));
      }
    }
  }
}

TEST(EngineGroupNorm, ContribNodeNhwcAgreesWithNchwAndRefusesBadShapes) {
  const int64_t N = 2, C = 12, H = 3, W = 5, G = 3;
  auto model = [&](bool nhwc, int64_t groups, std::vector<int64_t> gamma_shape) {
    ModelBuilder b(17);
    auto* os = b.proto().add_opset_import();
    os->set_domain("com.microsoft");
    os->set_version(1);
    b.input("x", F, nhwc ? std::vector<int64_t>{N, H, W, C} : std::vector<int64_t>{N, C, H, W});
    b.output("y");
    b.init_f("gamma", gamma_shape, wave(C, 0.5f, 0.5f, 1.f));
    b.init_f("beta", gamma_shape, wave(C, 0.9f, 0.3f));
    auto& n = b.node("GroupNorm", {"x", "gamma", "beta"}, {"y"});
    n.set_domain("com.microsoft");
    ModelBuilder::attr_i(n, "groups", groups);
    ModelBuilder::attr_i(n, "activation", 1);
    ModelBuilder::attr_i(n, "channels_last", nhwc ? 1 : 0);
    return b;
  };
  const Tensor x = input({N, C, H, W});
  Tensor xt = Tensor::zeros(DType::kFloat32, {N, H, W, C}).value_or_die();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t s = 0; s < H * W; ++s) xt.data<float>()[(n * H * W + s) * C + c] = x.data<float>()[(n * C + c) * H * W + s];
  const Tensor y = run_y(CompiledModel::compile(model(false, G, {C}).bytes()).value_or_die(), x);
  const Tensor yt = run_y(CompiledModel::compile(model(true, G, {C}).bytes()).value_or_die(), xt);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t s = 0; s < H * W; ++s) {
        ASSERT_NEAR(yt.data<float>()[(n * H * W + s) * C + c], y.data<float>()[(n * C + c) * H * W + s], 1e-5f);
      }
  // The same values with torch's per-channel shape [C, 1, 1] in NCHW.
  expect_close(run_y(CompiledModel::compile(model(false, G, {C, 1, 1}).bytes()).value_or_die(), x), y);
  // groups must divide C; a [C, 1] gamma on a rank-4 X would not be per channel.
  auto bad_groups = CompiledModel::compile(model(false, 5, {C}).bytes());
  ASSERT_FALSE(bad_groups.ok());
  EXPECT_NE(bad_groups.status().message().find("must divide"), std::string::npos);
  auto bad_rank = CompiledModel::compile(model(false, G, {C, 1}).bytes());
  ASSERT_FALSE(bad_rank.ok());
  EXPECT_NE(bad_rank.status().message().find("gamma and beta"), std::string::npos);
}

}  // namespace
}  // namespace moss::engine
