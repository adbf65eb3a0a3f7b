// CompiledModel::compile_timing: every phase is measured, and a model whose Conv packs its
// weights reports packing and kernel creation.
#include "engine/runtime/compiled_model.h"
#include "model_builder.h"

#include <gtest/gtest.h>

namespace moss::engine {
namespace {

using testing::ModelBuilder;

TEST(CompileTiming, PhasesAddUpAndPackingIsSeen) {
  ModelBuilder b(13);
  b.input("x", onnx::TensorProto::FLOAT, {1, 16, 12, 12}).output("y");
  b.init_f("w", {32, 16, 3, 3}, std::vector<float>(32 * 16 * 9, 0.01f));
  b.init_f("b", {32}, std::vector<float>(32, 0.5f));
  ModelBuilder::attr_ints(b.node("Conv", {"x", "w", "b"}, {"c"}), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c"}, {"y"});
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  const CompileTiming& t = model->compile_timing();
  for (double ms : {t.parse_ms, t.passes_ms, t.kernels_ms, t.pack_ms, t.plan_ms}) {
    EXPECT_GE(ms, 0.0);
    EXPECT_LE(ms, t.total_ms);
  }
  EXPECT_GT(t.pack_ms, 0.0);     // the Conv's weights and bias were packed
  EXPECT_GT(t.kernels_ms, 0.0);  // and its primitive created
  EXPECT_NEAR(t.parse_ms + t.passes_ms + t.kernels_ms + t.pack_ms + t.plan_ms, t.total_ms, 1e-6);
}

}  // namespace
}  // namespace moss::engine
