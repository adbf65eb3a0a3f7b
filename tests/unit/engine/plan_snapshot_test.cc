// PlanSnapshot: a compile recorded, serialised, parsed back and rebuilt by compile_snapshot()
// gives bit-identical outputs to a fresh compile of the ONNX model, for weights packed unchanged
// (stored without bytes), weights the kernels derive from before packing (Conv + BatchNorm
// folded, Gemm alpha, LayerNorm) and a weight two nodes read (kept whole); a snapshot whose packed
// weights are not its compile's is refused, and a damaged one is refused. Weights stored without
// bytes read back as stand-ins: one zero tensor sized for the largest, shared, never left in the
// rebuilt model.
#include "engine/kernels/onednn/onednn_ops.h"
#include "engine/runtime/compiled_model.h"
#include "engine/runtime/execution_context.h"
#include "engine/runtime/plan_snapshot.h"
#include "test_models.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <span>
#include <utility>

namespace moss::engine {
namespace {

using testing::cnn;
using testing::encoder;
using Bytes = std::vector<uint8_t>;

Tensor run(const std::shared_ptr<const CompiledModel>& m) { return testing::run_once(m); }

// `bytes` copied into 64-byte aligned memory, as the plan cache decrypts an entry.
std::pair<std::shared_ptr<const void>, std::span<const uint8_t>> aligned(const Bytes& bytes) {
  auto keep = std::shared_ptr<uint8_t[]>(new (std::align_val_t(64)) uint8_t[bytes.size() + 1],
                                         [](uint8_t* p) { ::operator delete[](p, std::align_val_t(64)); });
  std::copy(bytes.begin(), bytes.end(), keep.get());
  return {keep, {keep.get(), bytes.size()}};
}

// Serialised and parsed back, as the plan cache does.
std::shared_ptr<const PlanSnapshot> round_trip(const PlanSnapshot& s) {
  auto [keep, span] = aligned(s.serialize());
  return PlanSnapshot::parse(keep, span).value_or_die();
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
  // The same graph (its stand-in stays without bytes) over other weights: only the replay fails.
  auto mixed = PlanSnapshot::record(graph, {}, other->weights()).value_or_die();
  auto r = CompiledModel::compile_snapshot(*round_trip(*mixed));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
}

// Two convolutions whose weights (18 KiB and 9 KiB) are packed as they are.
Bytes two_convs() {
  constexpr int F = onnx::TensorProto::FLOAT;
  testing::ModelBuilder b(13);
  b.input("x", F, {1, 16, 10, 10}).output("y");
  b.init_f("w1", {32, 16, 3, 3}, testing::wave(32 * 144, 0.05f, 0.3f));
  b.init_f("w2", {8, 32, 3, 3}, testing::wave(8 * 288, 0.07f, 0.2f));
  testing::ModelBuilder::attr_ints(b.node("Conv", {"x", "w1"}, {"c1"}), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"r1"});
  b.node("Conv", {"r1", "w2"}, {"y"});
  return b.bytes();
}

TEST(PlanSnapshotTest, WeightsStoredWithoutBytesShareOneStandInSizedForTheLargest) {
  const Bytes model = two_convs();
  auto snapshot = round_trip(*recorded(model)->snapshot());
  const Graph g = snapshot->graph().value_or_die();
  std::vector<const Value*> stand_ins;
  for (const Value& v : g.values) {
    if (v.stand_in) stand_ins.push_back(&v);
  }
  ASSERT_EQ(stand_ins.size(), 2u);
  EXPECT_EQ(stand_ins[0]->constant_shape(), (std::vector<int64_t>{32, 16, 3, 3}));
  EXPECT_EQ(stand_ins[1]->constant_shape(), (std::vector<int64_t>{8, 32, 3, 3}));
  ASSERT_TRUE(stand_ins[0]->constant);
  EXPECT_EQ(stand_ins[0]->constant, stand_ins[1]->constant);  // one tensor, not one per weight
  const Tensor& zeros = *stand_ins[0]->constant;
  EXPECT_EQ(zeros.dtype(), DType::kFloat32);
  EXPECT_EQ(zeros.nbytes(), 32u * 16 * 9 * 4);
  EXPECT_TRUE(std::all_of(zeros.raw(), zeros.raw() + zeros.nbytes(), [](uint8_t b) { return b == 0; }));
  // The rebuild answers as a fresh compile and lets go of the stand-in.
  auto hit = CompiledModel::compile_snapshot(*snapshot).value_or_die();
  EXPECT_TRUE(run(hit).equals(run(CompiledModel::compile(model).value_or_die())));
  for (const Value& v : hit->graph().values) EXPECT_FALSE(v.stand_in && v.constant) << v.name;
  // Recorded again from the read-back graph, a stand-in stays without bytes.
  auto again = PlanSnapshot::record(g, {}, snapshot->weights()).value_or_die();
  EXPECT_EQ(again->graph_bytes(), snapshot->graph_bytes());
}

TEST(PlanSnapshotTest, SnapshotWhoseStandInWouldBeReadIsRefused) {
  // w1 made a graph output as well: the plan would hand its stand-in's zeros to the caller, so
  // the rebuild is refused although every packed weight replays.
  auto first = recorded(two_convs());
  Graph g = first->snapshot()->graph().value_or_die();
  const int w1 = g.find_value("w1");
  ASSERT_GE(w1, 0);
  ASSERT_TRUE(g.values[w1].stand_in);
  g.outputs.push_back(w1);
  auto leaky = PlanSnapshot::record(g, {}, first->snapshot()->weights()).value_or_die();
  auto r = CompiledModel::compile_snapshot(*round_trip(*leaky));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(r.status().reason(), kSnapshotDoesNotReplay);
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

// What the format cannot hold is refused with a fixed message: it reaches the worker's log, so
// it never names the model's nodes.
TEST(PlanSnapshotTest, UnsupportedGraphIsRefusedWithoutNamingItsNodes) {
  Graph g;
  Node n;
  n.name = "secret_node_name";
  n.op_type = "Constant";
  Attribute value;
  value.kind = Attribute::Kind::kTensor;  // no numeric tensor: a string tensor's shape
  n.attrs.emplace("value", value);
  g.nodes.push_back(std::move(n));
  auto r = PlanSnapshot::record(g, {}, std::make_shared<PackedWeights>());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnimplemented);
  EXPECT_EQ(r.status().reason(), kSnapshotUnsupported);
  EXPECT_EQ(r.status().message().find("secret_node_name"), std::string::npos) << r.status().message();
}

TEST(PlanSnapshotTest, DamagedSnapshotIsRefused) {
  const Bytes good = recorded(cnn(32))->snapshot()->serialize();
  // Parsed, then its graph read (as compile_snapshot does): the first error found.
  auto read = [](const Bytes& b) {
    auto [keep, span] = aligned(b);
    auto s = PlanSnapshot::parse(keep, span);
    return s.ok() ? (*s)->graph().status() : s.status();
  };
  auto refused = [&](const Bytes& b) {
    const Status s = read(b);
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.reason(), kSnapshotMalformed) << s.to_string();
  };
  EXPECT_TRUE(read(good).ok());
  refused({good.begin(), good.begin() + static_cast<long>(good.size() / 2)});
  refused({good.begin(), good.begin() + 100});
  Bytes bad_magic = good;
  bad_magic[0] ^= 1;
  refused(bad_magic);
  Bytes bad_half = good;
  bad_half[12] = 0x7f;  // the half weights' type
  refused(bad_half);
  Bytes bad_length = good;
  bad_length[64] ^= 0x40;  // the graph structure's length
  refused(bad_length);
  // Bytes of the graph's structure flipped in turn: each refused as malformed or still a
  // well-formed graph, never a crash (the entry is authenticated; the bounds are checked anyway);
  // the lengths, counts and ids among them are caught.
  uint64_t len = 0;
  std::memcpy(&len, good.data() + 64, 8);
  size_t flips = 0, caught = 0;
  for (size_t i = 64 + 8; i < 64 + 8 + len; i += 7) {
    Bytes b = good;
    b[i] ^= 0xff;
    const Status s = read(b);
    ++flips;
    if (s.ok()) continue;
    ++caught;
    EXPECT_EQ(s.reason(), kSnapshotMalformed) << s.to_string();
  }
  EXPECT_GT(flips, 100u);
  EXPECT_GT(caught, flips / 2) << caught << " of " << flips;  // 130 of 178 when written
}

}  // namespace
}  // namespace moss::engine
