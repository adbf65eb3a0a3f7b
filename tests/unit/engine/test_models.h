// Tiny models shared by the engine tests (and the worker's plan cache tests), built with
// ModelBuilder: deterministic, compiled in milliseconds. One home each, so a test of one part
// (snapshots, half precision) runs the same model as the tests of the others.
#pragma once

#include "common/half.h"
#include "model_builder.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace moss::engine::testing {

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
