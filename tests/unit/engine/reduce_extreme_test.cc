// ReduceMax / ReduceMin of float32 over one run of consecutive axes take a vectorized path; it
// gives exactly what the general reduction gives (here: the same data as float64, which always
// takes the general path), NaN, infinities and signed zeros included.
#include "engine/runtime/execution_context.h"
#include "model_builder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace moss::engine {
namespace {

using testing::ModelBuilder;

Tensor reduce(const std::string& op, const Tensor& x, std::vector<int64_t> axes, int64_t keep) {
  const int elem = x.dtype() == DType::kFloat32 ? onnx::TensorProto::FLOAT : onnx::TensorProto::DOUBLE;
  ModelBuilder b(13);
  b.input("x", elem, x.shape()).output("y", elem);
  auto& n = b.node(op, {"x"}, {"y"});
  ModelBuilder::attr_ints(n, "axes", axes);
  ModelBuilder::attr_i(n, "keepdims", keep);
  auto m = CompiledModel::compile(b.bytes()).value_or_die();
  ExecutionContext ctx(m);
  return ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die()[0].tensor;
}

TEST(EngineReduceExtreme, FloatFastPathMatchesTheGeneralReduction) {
  const std::vector<int64_t> shape = {3, 4, 5, 6};
  Tensor f = Tensor::zeros(DType::kFloat32, shape).value_or_die();
  Tensor d = Tensor::zeros(DType::kFloat64, shape).value_or_die();
  for (int64_t i = 0; i < f.numel(); ++i) {
    float v = std::round(std::sin(0.7f * static_cast<float>(i)) * 8.f) / 4.f;  // ties
    if (i % 17 == 3) v = -0.f;
    if (i == 40) v = std::numeric_limits<float>::quiet_NaN();
    if (i == 77) v = -std::numeric_limits<float>::infinity();
    if (i == 200) v = std::numeric_limits<float>::infinity();
    f.data<float>()[i] = v;
    d.data<double>()[i] = v;
  }
  for (const char* op : {"ReduceMax", "ReduceMin"}) {
    for (auto axes : std::vector<std::vector<int64_t>>{{3}, {2, 3}, {1}, {0}, {1, 2}, {0, 1, 2, 3}, {-1}}) {
      for (int64_t keep : {0, 1}) {
        SCOPED_TRACE(::testing::Message() << op << " axes[0] " << axes[0] << " n " << axes.size() << " keep " << keep);
        const Tensor fast = reduce(op, f, axes, keep);
        const Tensor general = reduce(op, d, axes, keep);
        ASSERT_EQ(fast.shape(), general.shape());
        for (int64_t i = 0; i < fast.numel(); ++i) {
          const float a = fast.data<float>()[i];
          const float b = static_cast<float>(general.data<double>()[i]);
          if (std::isnan(b)) {
            EXPECT_TRUE(std::isnan(a)) << i;
          } else {
            EXPECT_EQ(std::memcmp(&a, &b, sizeof a), 0) << i << ": " << a << " vs " << b;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace moss::engine
