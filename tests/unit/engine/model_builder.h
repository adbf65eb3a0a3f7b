// Tiny ONNX model builder for engine tests (serialised ModelProto bytes).
#pragma once

#include "common/tensor.h"

#include <onnx/onnx.pb.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace moss::engine::testing {

// Deterministic, non-trivial weights: offset + scale * sin(f * i + 0.3).
inline std::vector<float> wave(size_t n, float f, float scale, float offset = 0.f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = offset + scale * std::sin(f * static_cast<float>(i) + 0.3f);
  return v;
}

class ModelBuilder {
 public:
  explicit ModelBuilder(int opset = 17) {
    model_.set_ir_version(8);
    auto* os = model_.add_opset_import();
    os->set_domain("");
    os->set_version(opset);
  }
  // dims: -1 = symbolic.
  ModelBuilder& input(const std::string& name, int elem, std::vector<int64_t> dims) {
    add_value(model_.mutable_graph()->add_input(), name, elem, dims);
    return *this;
  }
  ModelBuilder& output(const std::string& name, int elem = onnx::TensorProto::FLOAT) {
    auto* v = model_.mutable_graph()->add_output();
    v->set_name(name);
    v->mutable_type()->mutable_tensor_type()->set_elem_type(elem);
    return *this;
  }
  onnx::NodeProto& node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
                        const std::string& name = "") {
    auto* n = model_.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(name.empty() ? op + std::to_string(model_.graph().node_size()) : name);
    for (auto& s : in) n->add_input(s);
    for (auto& s : out) n->add_output(s);
    return *n;
  }
  ModelBuilder& init_f(const std::string& name, std::vector<int64_t> dims, std::vector<float> v) {
    auto* t = model_.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : dims) t->add_dims(d);
    for (float x : v) t->add_float_data(x);
    return *this;
  }
  ModelBuilder& init_i(const std::string& name, std::vector<int64_t> dims, std::vector<int64_t> v) {
    auto* t = model_.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    for (auto d : dims) t->add_dims(d);
    for (int64_t x : v) t->add_int64_data(x);
    return *this;
  }
  static void attr_i(onnx::NodeProto& n, const std::string& k, int64_t v) {
    auto* a = n.add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr_f(onnx::NodeProto& n, const std::string& k, float v) {
    auto* a = n.add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void attr_ints(onnx::NodeProto& n, const std::string& k, std::vector<int64_t> v) {
    auto* a = n.add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::INTS);
    for (auto x : v) a->add_ints(x);
  }
  static void attr_s(onnx::NodeProto& n, const std::string& k, const std::string& v) {
    auto* a = n.add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(v);
  }
  // A graph-valued attribute (If's branches, Loop's and Scan's body).
  static void attr_g(onnx::NodeProto& n, const std::string& k, const onnx::GraphProto& g) {
    auto* a = n.add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::GRAPH);
    *a->mutable_g() = g;
  }
  // The model's graph, e.g. to build a subgraph with the same helpers and move it out.
  onnx::GraphProto& graph() { return *model_.mutable_graph(); }
  onnx::ModelProto& proto() { return model_; }
  std::vector<uint8_t> bytes() const {
    std::string s = model_.SerializeAsString();
    return std::vector<uint8_t>(s.begin(), s.end());
  }

 private:
  static void add_value(onnx::ValueInfoProto* v, const std::string& name, int elem,
                        const std::vector<int64_t>& dims) {
    v->set_name(name);
    auto* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(elem);
    auto* shape = tt->mutable_shape();
    for (auto d : dims) {
      auto* dim = shape->add_dim();
      if (d >= 0) dim->set_dim_value(d); else dim->set_dim_param("N");
    }
  }
  onnx::ModelProto model_;
};

// A Loop of M trips (graph inputs M: int64 scalar, x: float [4]) carrying s = s * a + x (s0 = 0,
// a = 0.5 and x read from the outer scope), with a body condition i < limit computed each trip.
// Outputs: "final", the carried s; with `scan`, also "all": Relu(s) of every trip, stacked.
inline std::vector<uint8_t> carried_loop_model(bool scan, int64_t limit) {
  constexpr int F = onnx::TensorProto::FLOAT, I64 = onnx::TensorProto::INT64,
                BOOL = onnx::TensorProto::BOOL;
  ModelBuilder body;
  body.input("i", I64, {}).input("cin", BOOL, {}).input("s", F, {4});
  body.output("cout", BOOL).output("s2");
  if (scan) body.output("scan");
  body.init_i("limit", {}, {limit});
  body.node("Less", {"i", "limit"}, {"cout"});
  body.node("Mul", {"s", "a"}, {"t"});
  body.node("Add", {"t", "x"}, {"s2"});
  if (scan) body.node("Relu", {"s2"}, {"scan"});
  ModelBuilder b;
  b.input("M", I64, {}).input("x", F, {4}).output("final");
  if (scan) b.output("all");
  b.init_f("a", {4}, {0.5f, 0.5f, 0.5f, 0.5f}).init_f("s0", {4}, {0, 0, 0, 0});
  std::vector<std::string> outs{"final"};
  if (scan) outs.push_back("all");
  auto& n = b.node("Loop", {"M", "", "s0"}, outs, "loop");
  ModelBuilder::attr_g(n, "body", body.graph());
  return b.bytes();
}

}  // namespace moss::engine::testing
