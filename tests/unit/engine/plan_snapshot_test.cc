// PlanSnapshot: a compile recorded, serialised, parsed back and rebuilt by compile_snapshot()
// gives bit-identical outputs to a fresh compile of the ONNX model, for weights packed unchanged
// (stored without bytes), weights the kernels derive from before packing (Conv + BatchNorm
// folded, Gemm alpha, LayerNorm) and a weight two nodes read (kept whole); a snapshot whose packed
// weights are not its compile's is refused, and a damaged one is refused.
#include "engine/kernels/onednn/onednn_ops.h"
#include "engine/runtime/compiled_model.h"
#include "engine/runtime/execution_context.h"
#include "engine/runtime/plan_snapshot.h"
#include "test_models.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

namespace moss::engine {
namespace {

using testing::ModelBuilder;
using testing::wave;
constexpr int F = onnx::TensorProto::FLOAT;

void attr_f(onnx::NodeProto& n, const std::string& k, float v) {
  auto* a = n.add_attribute();
  a->set_name(k);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

// Conv (weights packed as they are), Conv + BatchNormalization (folded before packing), a
// residual, a Gemm with alpha (scaled before packing).
std::vector<uint8_t> cnn(int channels) {
  const int64_t c = channels;
  const auto n = static_cast<size_t>(c);
  ModelBuilder b(13);
  b.input("x", F, {1, 16, 10, 10}).output("y");
  b.init_f("w1", {c, 16, 3, 3}, wave(n * 144, 0.05f, 0.3f));
  b.init_f("b1", {c}, wave(n, 0.5f, 0.1f));
  b.init_f("w2", {16, c, 1, 1}, wave(n * 16, 0.07f, 0.4f));
  b.init_f("s", {16}, wave(16, 0.3f, 1.0f)).init_f("sb", {16}, wave(16, 0.2f, 0.1f));
  b.init_f("m", {16}, wave(16, 0.1f, 0.05f)).init_f("v", {16}, std::vector<float>(16, 1.5f));
  b.init_f("g", {5, 16}, wave(80, 0.05f, 0.2f)).init_f("gc", {5}, wave(5, 1.0f, 0.1f));
  ModelBuilder::attr_ints(b.node("Conv", {"x", "w1", "b1"}, {"c1"}), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"r1"});
  b.node("Conv", {"r1", "w2"}, {"c2"});
  b.node("BatchNormalization", {"c2", "s", "sb", "m", "v"}, {"n2"});
  b.node("Add", {"n2", "x"}, {"sum"});
  b.node("GlobalAveragePool", {"sum"}, {"gap"});
  b.node("Flatten", {"gap"}, {"f"});
  auto& gemm = b.node("Gemm", {"f", "g", "gc"}, {"y"});
  ModelBuilder::attr_i(gemm, "transB", 1);
  attr_f(gemm, "alpha", 0.5f);
  return b.bytes();
}

// MatMul + bias, LayerNormalization, and one weight read by two MatMuls.
std::vector<uint8_t> encoder() {
  ModelBuilder b(17);
  b.input("x", F, {1, 8, 32}).output("y");
  b.init_f("w", {32, 32}, wave(1024, 0.03f, 0.2f)).init_f("bias", {32}, wave(32, 0.4f, 0.1f));
  b.init_f("tied", {32, 32}, wave(1024, 0.02f, 0.3f));
  b.init_f("gamma", {32}, wave(32, 0.1f, 1.0f)).init_f("beta", {32}, wave(32, 0.2f, 0.1f));
  b.node("MatMul", {"x", "w"}, {"h"});
  b.node("Add", {"h", "bias"}, {"hb"});
  b.node("LayerNormalization", {"hb", "gamma", "beta"}, {"ln"});
  b.node("MatMul", {"ln", "tied"}, {"t1"});
  b.node("Relu", {"t1"}, {"r"});
  b.node("MatMul", {"r", "tied"}, {"y"});
  return b.bytes();
}

Tensor run(const std::shared_ptr<const CompiledModel>& m) {
  const IoInfo& in = m->inputs().at(0);
  Tensor x = Tensor::zeros(DType::kFloat32, in.dims).value_or_die();
  auto* d = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) d[i] = std::cos(0.01f * static_cast<float>(i));
  ExecutionContext ctx(m);
  const std::vector<NamedTensor> inputs{{in.name, x}};
  return ctx.run(inputs).value_or_die().at(0).tensor;
}

// Serialised and parsed back into 64-byte aligned memory, as the plan cache does.
std::shared_ptr<const PlanSnapshot> round_trip(const PlanSnapshot& s) {
  const std::vector<uint8_t> bytes = s.serialize();
  auto keep = std::shared_ptr<uint8_t[]>(new (std::align_val_t(64)) uint8_t[bytes.size()],
                                         [](uint8_t* p) { ::operator delete[](p, std::align_val_t(64)); });
  std::copy(bytes.begin(), bytes.end(), keep.get());
  return PlanSnapshot::parse(keep, {keep.get(), bytes.size()}).value_or_die();
}

std::shared_ptr<const CompiledModel> recorded(const std::vector<uint8_t>& model) {
  CompileOptions o;
  o.record_packed_weights = true;
  return CompiledModel::compile(model, o).value_or_die();
}

TEST(PlanSnapshotTest, RebuiltModelGivesTheOutputsOfAFreshCompile) {
  for (const auto& model : {cnn(32), encoder()}) {
    auto first = recorded(model);
    ASSERT_TRUE(first->snapshot());
    auto snapshot = round_trip(*first->snapshot());
    auto hit = CompiledModel::compile_snapshot(*snapshot).value_or_die();
    EXPECT_TRUE(hit->packed_weights_replayed());
    snapshot.reset();  // the model keeps the snapshot's bytes alive
    const Tensor expected = run(CompiledModel::compile(model).value_or_die());
    EXPECT_TRUE(run(hit).equals(expected));
    EXPECT_TRUE(run(first).equals(expected));
  }
}

TEST(PlanSnapshotTest, TakeSnapshotHandsItOverOnce) {
  auto m = recorded(encoder());
  auto taken = m->take_snapshot();
  ASSERT_TRUE(taken);
  EXPECT_FALSE(m->snapshot());
  EXPECT_FALSE(m->take_snapshot());
  // The model still runs, and the snapshot it handed over still rebuilds it.
  const Tensor expected = run(m);
  EXPECT_TRUE(run(CompiledModel::compile_snapshot(*round_trip(*taken)).value_or_die()).equals(expected));
}

TEST(PlanSnapshotTest, WeightsPackedUnchangedAreStoredWithoutBytes) {
  // w1 (18 KiB for 32 channels) is packed as it is: the graph holds only its shape. w2 and the
  // BatchNorm values are folded first, and the Gemm's weights scaled: those keep their bytes.
  auto small = recorded(cnn(32))->snapshot();
  auto large = recorded(cnn(64))->snapshot();
  ASSERT_TRUE(small && large);
  const size_t w2_growth = 16 * 32 * 4;
  EXPECT_LT(large->graph_bytes() - small->graph_bytes(), w2_growth + 1024);
  // In the encoder, `tied` is read by two MatMuls, so it keeps its 4 KiB.
  auto enc = recorded(encoder())->snapshot();
  ASSERT_TRUE(enc);
  EXPECT_GT(enc->graph_bytes(), 4096u);
  EXPECT_LT(enc->graph_bytes(), 4096u + 4096u);
}

TEST(PlanSnapshotTest, SnapshotWithAnotherCompilesWeightsIsRefused) {
  auto mine = recorded(cnn(32))->snapshot();
  auto other = recorded(cnn(48))->snapshot();
  const Graph graph = mine->graph().value_or_die();
  // Every constant stored whole here (zeros where `mine` had none): only the replay can fail.
  auto mixed = PlanSnapshot::record(graph, {}, other->weights()).value_or_die();
  auto r = CompiledModel::compile_snapshot(*round_trip(*mixed));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
}

// A half model's snapshot records its half plan (the retyped graph no longer shows it): the
// rebuild holds the weights half again, as the fresh compile does.
TEST(PlanSnapshotTest, HalfModelRebuildsToItsRecordedHalfPlan) {
  const auto model = testing::half_conv<Float16>(onnx::TensorProto::FLOAT16);
  auto first = recorded(model);
  ASSERT_TRUE(first->snapshot());
  EXPECT_EQ(first->snapshot()->half().weights, DType::kFloat16);
  auto snapshot = round_trip(*first->snapshot());
  EXPECT_EQ(snapshot->half().weights, DType::kFloat16);
  EXPECT_EQ(snapshot->half().compute, HalfCompute::kFloat32);
  auto hit = CompiledModel::compile_snapshot(*snapshot).value_or_die();
  EXPECT_TRUE(hit->packed_weights_replayed());
  EXPECT_EQ(hit->half_plan().weights, DType::kFloat16);
  EXPECT_EQ(hit->half_plan().compute, HalfCompute::kFloat32);
  EXPECT_EQ(hit->weights_bytes(), first->weights_bytes());  // held half, not float32
  EXPECT_TRUE(run(hit).equals(run(CompiledModel::compile(model).value_or_die())));
}

TEST(PlanSnapshotTest, SnapshotWhoseHalfComputeDiffersIsRefused) {
  auto first = recorded(testing::half_conv<Float16>(onnx::TensorProto::FLOAT16));
  ASSERT_TRUE(first->snapshot());
  const Graph graph = first->snapshot()->graph().value_or_die();
  // Recorded as computing in bfloat16: float32 options never grant that, whatever the CPU.
  auto bf16 = PlanSnapshot::record(graph, {}, first->snapshot()->weights(),
                                   HalfPlan{DType::kFloat16, HalfCompute::kBFloat16})
                  .value_or_die();
  auto r = CompiledModel::compile_snapshot(*round_trip(*bf16));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(r.status().reason(), kSnapshotHalfComputeDiffers);
  // Recorded in float32, rebuilt asking for bfloat16: refused where this CPU would grant it.
  CompileOptions ask_bf16;
  ask_bf16.half_compute = HalfCompute::kBFloat16;
  auto asked = CompiledModel::compile_snapshot(*round_trip(*first->snapshot()), ask_bf16);
  if (onednn::cpu_has_bf16()) {
    ASSERT_FALSE(asked.ok());
    EXPECT_EQ(asked.status().reason(), kSnapshotHalfComputeDiffers);
  } else {
    EXPECT_TRUE(asked.ok()) << asked.status().to_string();
  }
}

TEST(PlanSnapshotTest, DamagedSnapshotIsRefused) {
  const std::vector<uint8_t> good = recorded(cnn(32))->snapshot()->serialize();
  // Parsed, then its graph read (as compile_snapshot does): the first error found.
  auto read = [](std::vector<uint8_t> b) {
    auto keep = std::shared_ptr<uint8_t[]>(new (std::align_val_t(64)) uint8_t[b.size() + 1],
                                           [](uint8_t* p) { ::operator delete[](p, std::align_val_t(64)); });
    std::copy(b.begin(), b.end(), keep.get());
    auto s = PlanSnapshot::parse(keep, {keep.get(), b.size()});
    return s.ok() ? (*s)->graph().status() : s.status();
  };
  EXPECT_TRUE(read(good).ok());
  EXPECT_FALSE(read({good.begin(), good.begin() + static_cast<long>(good.size() / 2)}).ok());
  EXPECT_FALSE(read({good.begin(), good.begin() + 100}).ok());
  std::vector<uint8_t> bad_magic = good;
  bad_magic[0] ^= 1;
  EXPECT_FALSE(read(bad_magic).ok());
  std::vector<uint8_t> bad_length = good;
  bad_length[64] ^= 0x40;  // the graph structure's length
  EXPECT_FALSE(read(bad_length).ok());
  // Bytes of the graph's structure flipped in turn: refused or still a well-formed graph, never
  // a crash (the entry is authenticated; the bounds are checked anyway).
  uint64_t len = 0;
  std::memcpy(&len, good.data() + 64, 8);
  for (size_t i = 64 + 8; i < 64 + 8 + len; i += 7) {
    std::vector<uint8_t> b = good;
    b[i] ^= 0xff;
    (void)read(b);
  }
}

}  // namespace
}  // namespace moss::engine
