// LSTM, GRU and RNN on oneDNN's RNN primitives agree with the reference kernel in every form
// oneDNN takes (directions, layouts, batch sizes, initial states, bias, peepholes, GRU
// linear_before_reset, RNN activations, 1 and 2 threads), and the forms it does not take (clip,
// input_forget, other activations, short sequence_lens) stay on the reference kernel. A batch-1
// LSTM runs our own cell (kernels/lstm_batch1.h) where the host has AVX-512, against the same twin.
#include "engine/kernels/lstm_batch1.h"
#include "engine/runtime/execution_context.h"
#include "model_builder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <optional>

namespace moss::engine {
namespace {

using testing::ModelBuilder;
using testing::wave;
constexpr int F = onnx::TensorProto::FLOAT;

struct Case {
  std::string op = "LSTM";
  std::string direction = "forward";
  int64_t layout = 0, seq = 5, batch = 3, input = 6, hidden = 8;
  bool bias = true, initial_h = false, initial_c = false, peephole = false;
  int64_t linear_before_reset = -1;  // GRU attribute, -1 = absent
  std::vector<std::string> activations;
  float clip = 0;
  int64_t input_forget = 0;
  std::optional<std::vector<int32_t>> sequence_lens;  // a graph input when set
  int threads = 1;
};

int64_t gates(const Case& c) { return c.op == "LSTM" ? 4 : c.op == "GRU" ? 3 : 1; }
int64_t dirs(const Case& c) { return c.direction == "bidirectional" ? 2 : 1; }

std::vector<int64_t> state_shape(const Case& c) {
  return c.layout == 1 ? std::vector<int64_t>{c.batch, dirs(c), c.hidden}
                       : std::vector<int64_t>{dirs(c), c.batch, c.hidden};
}

std::vector<uint8_t> model(const Case& c) {
  ModelBuilder b(14);
  const int64_t D = dirs(c), G = gates(c) * c.hidden;
  b.input("x", F, c.layout == 1 ? std::vector<int64_t>{c.batch, c.seq, c.input}
                                : std::vector<int64_t>{c.seq, c.batch, c.input});
  b.init_f("w", {D, G, c.input}, wave(D * G * c.input, 0.37f, 0.4f));
  b.init_f("r", {D, G, c.hidden}, wave(D * G * c.hidden, 0.23f, 0.3f));
  std::vector<std::string> in = {"x", "w", "r", "", "", "", "", ""};
  if (c.bias) {
    b.init_f("b", {D, 2 * G}, wave(D * 2 * G, 0.11f, 0.5f));
    in[3] = "b";
  }
  if (c.sequence_lens) {
    b.input("lens", onnx::TensorProto::INT32, {c.batch});
    in[4] = "lens";
  }
  if (c.initial_h) {
    b.input("h0", F, state_shape(c));
    in[5] = "h0";
  }
  if (c.initial_c) {
    b.input("c0", F, state_shape(c));
    in[6] = "c0";
  }
  if (c.peephole) {
    b.init_f("p", {D, 3 * c.hidden}, wave(D * 3 * c.hidden, 0.19f, 0.6f));
    in[7] = "p";
  }
  while (!in.empty() && in.back().empty()) in.pop_back();
  std::vector<std::string> out = {"y", "y_h"};
  if (c.op == "LSTM") out.push_back("y_c");
  for (const auto& o : out) b.output(o);
  auto& n = b.node(c.op, in, out);
  ModelBuilder::attr_i(n, "hidden_size", c.hidden);
  ModelBuilder::attr_s(n, "direction", c.direction);
  if (c.layout != 0) ModelBuilder::attr_i(n, "layout", c.layout);
  if (c.linear_before_reset >= 0) ModelBuilder::attr_i(n, "linear_before_reset", c.linear_before_reset);
  if (c.input_forget) ModelBuilder::attr_i(n, "input_forget", c.input_forget);
  if (c.clip > 0) ModelBuilder::attr_f(n, "clip", c.clip);
  if (!c.activations.empty()) {
    auto* a = n.add_attribute();
    a->set_name("activations");
    a->set_type(onnx::AttributeProto::STRINGS);
    for (const auto& s : c.activations) a->add_strings(s);
  }
  return b.bytes();
}

Tensor filled(std::vector<int64_t> shape, float step) {
  Tensor t = Tensor::zeros(DType::kFloat32, shape).value_or_die();
  for (int64_t i = 0; i < t.numel(); ++i) {
    t.data<float>()[i] = std::cos(step * static_cast<float>(i)) * 1.5f;
  }
  return t;
}

// Outputs and whether the node ran a prepared (oneDNN) kernel; batch1: whether that kernel was
// the batch-1 LSTM cell.
std::pair<std::vector<Tensor>, bool> run(const Case& c, const std::vector<uint8_t>& bytes,
                                         bool* batch1 = nullptr) {
  CompileOptions options;
  options.intra_op_threads = c.threads;
  auto m = CompiledModel::compile(bytes, options).value_or_die();
  ExecutionContext ctx(m);
  std::vector<NamedTensor> inputs;
  inputs.push_back({"x", filled(c.layout == 1 ? std::vector<int64_t>{c.batch, c.seq, c.input}
                                              : std::vector<int64_t>{c.seq, c.batch, c.input},
                                0.29f)});
  if (c.sequence_lens) {
    Tensor lens = Tensor::zeros(DType::kInt32, {c.batch}).value_or_die();
    for (int64_t i = 0; i < c.batch; ++i) lens.data<int32_t>()[i] = (*c.sequence_lens)[i];
    inputs.push_back({"lens", std::move(lens)});
  }
  if (c.initial_h) inputs.push_back({"h0", filled(state_shape(c), 0.41f)});
  if (c.initial_c) inputs.push_back({"c0", filled(state_shape(c), 0.17f)});
  std::vector<Tensor> outs;
  for (auto& o : ctx.run(inputs).value_or_die()) outs.push_back(std::move(o.tensor));
  bool prepared = false;
  for (const auto& k : ctx.plan()->prepared) {
    prepared |= k != nullptr;
    if (batch1 && k) *batch1 = is_lstm_batch1(k.get());
  }
  return {std::move(outs), prepared};
}

void expect_twin(const Case& c, bool want_onednn, bool* batch1 = nullptr) {
  const auto bytes = model(c);
  auto [fast, prepared] = run(c, bytes, batch1);
  setenv("MOSS_ENGINE_REFERENCE_ONLY", "1", 1);
  auto [ref, ref_prepared] = run(c, bytes);
  unsetenv("MOSS_ENGINE_REFERENCE_ONLY");
  EXPECT_EQ(prepared, want_onednn);
  EXPECT_FALSE(ref_prepared);
  ASSERT_EQ(fast.size(), ref.size());
  for (size_t o = 0; o < fast.size(); ++o) {
    ASSERT_EQ(fast[o].shape(), ref[o].shape()) << "output " << o;
    double sum = 0;
    for (int64_t i = 0; i < fast[o].numel(); ++i) {
      const float a = fast[o].data<float>()[i], b = ref[o].data<float>()[i];
      ASSERT_NEAR(a, b, 1e-4f + 1e-3f * std::fabs(b)) << "output " << o << " element " << i;
      sum += std::fabs(b);
    }
    EXPECT_GT(sum, 0.0) << "output " << o << " is all zeros";  // the case computes something
  }
}

TEST(EngineOnednnRecurrent, LstmEveryDirectionAndLayoutAgreesWithReference) {
  for (const char* dir : {"forward", "reverse", "bidirectional"}) {
    for (int64_t layout : {0, 1}) {
      for (int64_t batch : {1, 3}) {
        SCOPED_TRACE(::testing::Message() << dir << " layout " << layout << " batch " << batch);
        Case c;
        c.direction = dir;
        c.layout = layout;
        c.batch = batch;
        c.initial_h = c.initial_c = batch == 3;
        expect_twin(c, true);
      }
    }
  }
}

TEST(EngineOnednnRecurrent, LstmPeepholesStatesNoBiasAndTwoThreadsAgreeWithReference) {
  Case c;
  c.direction = "bidirectional";
  c.peephole = c.initial_h = c.initial_c = true;
  expect_twin(c, true);
  c.bias = false;
  c.peephole = false;
  c.initial_c = false;  // h0 alone: c0 is zeros
  c.layout = 1;
  expect_twin(c, true);
  c.threads = 2;
  c.seq = 17;
  c.hidden = 32;
  c.bias = true;
  expect_twin(c, true);
  c.activations = {"Sigmoid", "Tanh", "Tanh"};  // the defaults spelled out (once for both)
  expect_twin(c, true);
  Case big;  // steps large enough to run on both threads
  big.batch = 4;
  big.hidden = 512;
  big.seq = 3;
  big.threads = 2;
  expect_twin(big, true);
}

TEST(EngineOnednnRecurrent, LstmBatch1CellAgreesWithReferenceInEveryForm) {
  if (!__builtin_cpu_supports("avx512f")) GTEST_SKIP() << "the batch-1 cell needs AVX-512";
  // Hidden sizes below, at and across the 16-lane gates and the 128-row panels of R; sequences
  // of one step and of a tagger's length.
  for (int64_t hidden : {8, 37, 128, 200}) {
    for (const char* dir : {"forward", "reverse", "bidirectional"}) {
      SCOPED_TRACE(::testing::Message() << dir << " hidden " << hidden);
      Case c;
      c.batch = 1;
      c.direction = dir;
      c.hidden = hidden;
      c.seq = hidden == 37 ? 1 : 23;
      c.input = 19;
      c.layout = hidden == 128 ? 1 : 0;
      c.peephole = hidden != 200;
      c.initial_h = c.initial_c = hidden != 8;
      c.bias = hidden != 37;
      bool batch1 = false;
      expect_twin(c, true, &batch1);
      EXPECT_TRUE(batch1);
    }
  }
  // At two threads a bidirectional layer runs one direction per thread: the same bits as at one.
  Case two;
  two.batch = 1;
  two.direction = "bidirectional";
  two.hidden = 200;
  two.seq = 23;
  two.input = 19;
  two.initial_h = two.initial_c = true;
  const auto one_thread = run(two, model(two)).first;
  two.threads = 2;
  bool batch1_two = false;
  expect_twin(two, true, &batch1_two);
  EXPECT_TRUE(batch1_two);
  const auto two_threads = run(two, model(two)).first;
  ASSERT_EQ(one_thread.size(), two_threads.size());
  for (size_t o = 0; o < one_thread.size(); ++o) EXPECT_TRUE(one_thread[o].equals(two_threads[o])) << "output " << o;
  Case lens;  // a run-time sequence_lens may shorten the sequence: the oneDNN kernel decides per run
  lens.batch = 1;
  lens.sequence_lens = std::vector<int32_t>{5};
  bool batch1 = true;
  expect_twin(lens, true, &batch1);
  EXPECT_FALSE(batch1);
}

TEST(EngineOnednnRecurrent, GruBothResetFormsEveryDirectionAgreesWithReference) {
  for (int64_t lbr : {0, 1}) {
    for (const char* dir : {"forward", "reverse", "bidirectional"}) {
      for (int64_t layout : {0, 1}) {
        SCOPED_TRACE(::testing::Message() << dir << " lbr " << lbr << " layout " << layout);
        Case c;
        c.op = "GRU";
        c.linear_before_reset = lbr;
        c.direction = dir;
        c.layout = layout;
        c.initial_h = layout == 1;
        expect_twin(c, true);
      }
    }
  }
}

TEST(EngineOnednnRecurrent, RnnActivationsAgreeWithReference) {
  for (const char* act : {"Tanh", "Relu", "Sigmoid"}) {
    for (const char* dir : {"forward", "bidirectional"}) {
      SCOPED_TRACE(::testing::Message() << act << " " << dir);
      Case c;
      c.op = "RNN";
      c.direction = dir;
      c.activations = {act};
      c.initial_h = true;
      expect_twin(c, true);
    }
  }
}

TEST(EngineOnednnRecurrent, FormsOnednnLacksStayOnReference) {
  Case clip;
  clip.clip = 0.5f;
  expect_twin(clip, false);
  Case forget;
  forget.input_forget = 1;
  expect_twin(forget, false);
  Case acts;
  acts.op = "GRU";
  acts.activations = {"HardSigmoid", "Tanh"};
  expect_twin(acts, false);
  Case mixed;  // a different activation per direction
  mixed.op = "RNN";
  mixed.direction = "bidirectional";
  mixed.activations = {"Tanh", "Relu"};
  expect_twin(mixed, false);
}

TEST(EngineOnednnRecurrent, SequenceLensFullRunsOnednnShortFallsBackPerRun) {
  Case full;
  full.direction = "bidirectional";
  full.sequence_lens = std::vector<int32_t>{5, 5, 5};
  expect_twin(full, true);  // prepared; every batch covers the sequence
  Case part = full;
  part.sequence_lens = std::vector<int32_t>{5, 2, 4};
  expect_twin(part, true);  // prepared, but this run takes the reference path
  part.op = "GRU";
  part.linear_before_reset = 1;
  part.layout = 1;
  expect_twin(part, true);
}

}  // namespace
}  // namespace moss::engine
