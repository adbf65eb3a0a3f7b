// Tiny models shared by the engine tests (and the worker's plan cache tests), built with
// ModelBuilder: deterministic, compiled in milliseconds. One home each, so a test of one part
// (snapshots, half precision) runs the same model as the tests of the others.
#pragma once

#include "common/half.h"
#include "engine/runtime/compiled_model.h"
#include "engine/runtime/execution_context.h"
#include "model_builder.h"

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace moss::engine::testing {

// x [1, 16, 10, 10] -> Conv (weights packed as they are) -> Relu -> Conv + BatchNormalization
// (folded into the weights before packing) -> Add x -> GlobalAveragePool -> Gemm with alpha
// (scaled before packing) -> y [1, 5]. `channels` between the Convs.
inline std::vector<uint8_t> cnn(int channels) {
  constexpr int F = onnx::TensorProto::FLOAT;
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
  ModelBuilder::attr_f(gemm, "alpha", 0.5f);
  return b.bytes();
}

// x [1, 8, 32] -> MatMul + bias -> LayerNormalization -> MatMul -> Relu -> MatMul -> y, the last
// two MatMuls reading one weight ("tied").
inline std::vector<uint8_t> encoder() {
  constexpr int F = onnx::TensorProto::FLOAT;
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

// The first output of one run of `m` on a deterministic float32 input of its first input's
// (static) shape.
inline Tensor run_once(const std::shared_ptr<const CompiledModel>& m) {
  const IoInfo& in = m->inputs().at(0);
  Tensor x = Tensor::zeros(DType::kFloat32, in.dims).value_or_die();
  auto* d = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) d[i] = std::cos(0.01f * static_cast<float>(i));
  ExecutionContext ctx(m);
  const std::vector<NamedTensor> inputs{{in.name, x}};
  return ctx.run(inputs).value_or_die().at(0).tensor;
}

// An initializer of ONNX type `elem` (FLOAT16 / BFLOAT16) holding `v` rounded to H.
template <typename H>
void init_half(ModelBuilder& b, const std::string& name, int elem, std::vector<int64_t> dims,
               const std::vector<float>& v) {
  std::vector<uint16_t> bits;
  for (float f : v) bits.push_back(H(f).bits);
  auto* t = b.graph().add_initializer();
  t->set_name(name);
  t->set_data_type(elem);
  for (auto d : dims) t->add_dims(d);
  t->set_raw_data(std::string(reinterpret_cast<const char*>(bits.data()), bits.size() * 2));
}

// half_conv's geometry: input [1, C, H, H], M output channels.
inline constexpr int64_t kHalfConvC = 4, kHalfConvM = 6, kHalfConvH = 8;

// x (float32) -> Cast(half) -> Conv(3x3, pad 1, W and B half) -> Relu -> Mul(half constant)
// -> Cast(float32) -> y, as a converter with keep_io_types writes a half model.
// half_io: x and y in the half type (Identity at the edges). as_float: the float32 model with
// the half-rounded weights (what widening should compute).
template <typename H>
std::vector<uint8_t> half_conv(int elem, bool half_io = false, bool as_float = false) {
  constexpr int F = onnx::TensorProto::FLOAT;
  constexpr int64_t kC = kHalfConvC, kM = kHalfConvM, kH = kHalfConvH;
  ModelBuilder b(17);
  b.input("x", half_io ? elem : F, {1, kC, kH, kH}).output("y", half_io ? elem : F);
  std::vector<float> w(kM * kC * 9), bias(kM);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.3f * std::sin(0.7f * static_cast<float>(i));
  for (int64_t m = 0; m < kM; ++m) bias[m] = 0.1f * static_cast<float>(m) - 0.2f;
  if (as_float) {
    for (float& v : w) v = H(v);
    for (float& v : bias) v = H(v);
    b.init_f("w", {kM, kC, 3, 3}, w).init_f("b", {kM}, bias).init_f("k", {}, {1.5f});
    elem = F;
  } else {
    init_half<H>(b, "w", elem, {kM, kC, 3, 3}, w);
    init_half<H>(b, "b", elem, {kM}, bias);
    init_half<H>(b, "k", elem, {}, {1.5f});
  }
  if (half_io) {
    b.node("Identity", {"x"}, {"xh"});
  } else {
    ModelBuilder::attr_i(b.node("Cast", {"x"}, {"xh"}), "to", elem);
  }
  ModelBuilder::attr_ints(b.node("Conv", {"xh", "w", "b"}, {"c"}, "conv"), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c"}, {"r"});
  b.node("Mul", {"r", "k"}, {"m"});
  if (half_io) {
    b.node("Identity", {"m"}, {"y"});
  } else {
    ModelBuilder::attr_i(b.node("Cast", {"m"}, {"y"}), "to", F);
  }
  return b.bytes();
}

}  // namespace moss::engine::testing
