#include "engine/quant/half_precision.h"

#include <set>

#include "common/half.h"

namespace moss::engine {
namespace {

constexpr int64_t kOnnxFloat = 1, kOnnxFloat16 = 10, kOnnxBFloat16 = 16;

bool is_half(DType d) { return d == DType::kFloat16 || d == DType::kBFloat16; }

std::shared_ptr<const Tensor> widened(const Tensor& t) {
  Tensor f = Tensor::zeros(DType::kFloat32, t.shape()).value_or_die();
  float* y = f.data<float>();
  if (t.dtype() == DType::kFloat16) {
    for (int64_t i = 0; i < t.numel(); ++i) y[i] = t.data<Float16>()[i];
  } else {
    for (int64_t i = 0; i < t.numel(); ++i) y[i] = t.data<BFloat16>()[i];
  }
  return std::make_shared<const Tensor>(std::move(f));
}

// The attribute of n that makes a tensor of a given element type, when n has one.
bool types_its_output(const Node& n) {
  for (const auto& [name, a] : n.attrs) {
    if (a.kind == Attribute::Kind::kGraph || a.kind == Attribute::Kind::kType) return true;
    if (a.kind == Attribute::Kind::kTensor && !(n.op_type == "Constant" ||
                                                n.op_type == "ConstantOfShape")) {
      return true;
    }
    if ((name == "dtype" || name == "to") && n.op_type != "Cast") return true;
  }
  return false;
}

Node cast(int from, int to, int64_t type) {
  Node c;
  c.op_type = "Cast";
  c.opset = 13;
  c.inputs = {from};
  c.outputs = {to};
  Attribute a;
  a.kind = Attribute::Kind::kInt;
  a.i = type;
  c.attrs.emplace("to", a);
  return c;
}

// Half graph inputs and outputs keep their type: a Cast to float32 after each such input and one
// back to its half type before each such output; the nodes between read and write float32.
void edge_casts(Graph& g) {
  std::vector<Node> head, tail;
  auto rename = [&g](int from, int to, bool producer_too) {
    for (Node& n : g.nodes) {
      for (int& v : n.inputs) v = v == from ? to : v;
      if (producer_too) {
        for (int& v : n.outputs) v = v == from ? to : v;
      }
    }
  };
  auto onnx_type = [](DType d) { return d == DType::kFloat16 ? kOnnxFloat16 : kOnnxBFloat16; };
  for (int in : g.inputs) {
    if (!g.values[in].type || !is_half(g.values[in].type->dtype)) continue;
    const int f = g.add_value(g.values[in].name + "/moss_float32");
    rename(in, f, false);
    head.push_back(cast(in, f, kOnnxFloat));
  }
  for (int out : g.outputs) {
    if (!g.values[out].type || !is_half(g.values[out].type->dtype) ||
        g.values[out].producer < 0) {
      continue;  // an input or a constant passed through: nothing computes it
    }
    const int f = g.add_value(g.values[out].name + "/moss_float32");
    rename(out, f, true);
    tail.push_back(cast(f, out, onnx_type(g.values[out].type->dtype)));
  }
  if (head.empty() && tail.empty()) return;
  head.insert(head.end(), std::make_move_iterator(g.nodes.begin()),
              std::make_move_iterator(g.nodes.end()));
  head.insert(head.end(), std::make_move_iterator(tail.begin()),
              std::make_move_iterator(tail.end()));
  g.nodes = std::move(head);
  g.index_producers();
}

}  // namespace

Result<HalfPrecisionReport> compute_half_in_float32(Graph& g) {
  HalfPrecisionReport r;
  auto note = [&r](DType d) {
    if (r.stored == DType::kFloat32) r.stored = d;
  };
  for (const Value& v : g.values) {
    if (v.constant && is_half(v.constant->dtype())) {
      note(v.constant->dtype());
      r.half_bytes += static_cast<int64_t>(v.constant->nbytes());
    }
  }
  for (const Node& n : g.nodes) {
    if (n.domain.empty() && n.op_type == "Cast") {
      const int64_t to = n.attr_int("to", 0);
      if (to == kOnnxFloat16) note(DType::kFloat16);
      if (to == kOnnxBFloat16) note(DType::kBFloat16);
    }
    const Attribute* a = n.attr("value");
    if (a && a->kind == Attribute::Kind::kTensor && a->t && is_half(a->t->dtype())) {
      note(a->t->dtype());
      r.half_bytes += static_cast<int64_t>(a->t->nbytes());
    }
  }
  if (r.stored == DType::kFloat32) return r;  // not a half model
  if (r.half_bytes == 0) {  // a float32 model that rounds through half on purpose: as written
    r.kept = "no half-precision weights";
    return r;
  }
  for (const Node& n : g.nodes) {
    if (types_its_output(n)) {
      r.kept = fmt::format("{} has a type, tensor or subgraph attribute", n.label());
      return r;
    }
  }
  std::set<int> io(g.inputs.begin(), g.inputs.end());
  io.insert(g.outputs.begin(), g.outputs.end());
  for (size_t v = 0; v < g.values.size(); ++v) {
    Value& val = g.values[v];
    if (io.count(static_cast<int>(v))) continue;  // declared types stay (edge_casts)
    if (val.constant && is_half(val.constant->dtype())) val.constant = widened(*val.constant);
    if (val.type && is_half(val.type->dtype)) val.type->dtype = DType::kFloat32;
  }
  for (Node& n : g.nodes) {
    if (n.domain.empty() && n.op_type == "Cast") {
      auto it = n.attrs.find("to");
      if (it != n.attrs.end() && (it->second.i == kOnnxFloat16 || it->second.i == kOnnxBFloat16)) {
        it->second.i = kOnnxFloat;
      }
    }
    auto it = n.attrs.find("value");
    if (it != n.attrs.end() && it->second.kind == Attribute::Kind::kTensor && it->second.t &&
        is_half(it->second.t->dtype())) {
      it->second.t = widened(*it->second.t);
    }
  }
  edge_casts(g);
  r.widened = true;
  return r;
}

}  // namespace moss::engine
