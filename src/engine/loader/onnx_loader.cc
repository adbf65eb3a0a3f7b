#include "engine/loader/onnx_loader.h"

#include "common/tensor_proto.h"
#include "engine/graph/object.h"
#include "engine/runtime/object_proto.h"

#include <onnx/onnx.pb.h>

#include <algorithm>

namespace moss::engine {
namespace {

Result<DType> element_dtype(int32_t t) {
  if (auto d = dtype_from_onnx(t)) return *d;
  return unimplemented("ONNX element type {} ({}) is not supported", t, onnx_type_name(t));
}

Result<std::shared_ptr<const Tensor>> convert_tensor(const onnx::TensorProto& proto) {
  if (proto.data_location() == onnx::TensorProto::EXTERNAL || proto.external_data_size() > 0) {
    return unimplemented("tensor '{}' uses external data; only self-contained models are accepted",
                         proto.name());
  }
  auto t = tensor_from_proto(proto);
  if (!t.ok()) return t.status().with_context(fmt::format("tensor '{}'", proto.name()));
  return std::make_shared<const Tensor>(std::move(t).value());
}

// A tensor type, or sequences/optionals of one (graph/object.h); maps are refused.
Result<TensorType> convert_type(const onnx::TypeProto& type, const std::string& name) {
  std::vector<Container> containers;
  const onnx::TypeProto* t = &type;
  while (t->has_sequence_type() || t->has_optional_type()) {
    if (containers.size() >= kMaxContainerDepth) {
      return invalid_argument("value '{}' nests more than {} sequence/optional types", name,
                              kMaxContainerDepth);
    }
    const bool seq = t->has_sequence_type();
    containers.push_back(seq ? Container::kSequence : Container::kOptional);
    const auto& inner = seq ? t->sequence_type().elem_type() : t->optional_type().elem_type();
    if ((seq && !t->sequence_type().has_elem_type()) || (!seq && !t->optional_type().has_elem_type())) {
      return invalid_argument("value '{}': a sequence/optional type has no element type", name);
    }
    t = &inner;
  }
  if (!t->has_tensor_type()) {
    return unimplemented("value '{}' is not a tensor, sequence or optional (maps and sparse "
                         "tensors are unsupported)", name);
  }
  const auto& tt = t->tensor_type();
  TensorType out;
  out.containers = std::move(containers);
  if (tt.elem_type() == onnx::TensorProto::STRING) {
    out.is_string = true;
  } else {
    MOSS_ASSIGN_OR_RETURN(out.dtype, element_dtype(tt.elem_type()));
  }
  if (tt.has_shape()) {
    if (static_cast<size_t>(tt.shape().dim_size()) > kMaxTensorRank) {
      return invalid_argument("value '{}' has rank {} > {}", name, tt.shape().dim_size(),
                              kMaxTensorRank);
    }
    out.has_shape = true;
    for (const auto& d : tt.shape().dim()) {
      Dim dim;
      if (d.has_dim_value()) {
        if (d.dim_value() < 0) return invalid_argument("value '{}' has a negative dimension", name);
        dim.value = d.dim_value();
      } else {
        dim.param = d.dim_param();
      }
      out.dims.push_back(std::move(dim));
    }
  }
  return out;
}

// Subgraphs nest (an If inside a Loop body ...): depth and total node count are bounded across
// all of them, since every level is loaded recursively.
inline constexpr int kMaxSubgraphDepth = 16;

struct LoadState {
  const LoadLimits& limits;
  size_t nodes = 0;
  size_t values = 0;
  int depth = 0;
};

Status load_graph(const onnx::GraphProto& gp, Graph& g, LoadState& st, bool subgraph);

Result<std::shared_ptr<Graph>> load_subgraph(const onnx::GraphProto& gp, const Graph& parent,
                                             LoadState& st) {
  if (st.depth >= kMaxSubgraphDepth) {
    return invalid_argument("subgraphs nest deeper than {} levels", kMaxSubgraphDepth);
  }
  auto sub = std::make_shared<Graph>();
  sub->ir_version = parent.ir_version;
  sub->opsets = parent.opsets;
  ++st.depth;
  Status s = load_graph(gp, *sub, st, true);
  --st.depth;
  MOSS_RETURN_IF_ERROR(s);
  // Whatever the subgraph reads but does not define comes from the enclosing scope.
  sub->index_producers();
  std::vector<bool> is_input(sub->values.size(), false);
  for (int in : sub->inputs) is_input[in] = true;
  for (size_t v = 0; v < sub->values.size(); ++v) {
    const Value& val = sub->values[v];
    if (val.producer < 0 && !val.constant && !is_input[v]) sub->captures.push_back(static_cast<int>(v));
  }
  MOSS_RETURN_IF_ERROR(sub->topo_sort());
  return sub;
}

// string_tensor_allowed: a string tensor attribute becomes Attribute::strings_t (Constant's value,
// run by its object kernel); elsewhere it is refused like a string initializer.
Result<Attribute> convert_attribute(const onnx::AttributeProto& a, const Graph& parent, LoadState& st,
                                    std::vector<std::shared_ptr<Graph>>& subgraphs,
                                    bool string_tensor_allowed) {
  Attribute out;
  using A = onnx::AttributeProto;
  switch (a.type()) {
    case A::FLOAT: out.kind = Attribute::Kind::kFloat; out.f = a.f(); break;
    case A::INT: out.kind = Attribute::Kind::kInt; out.i = a.i(); break;
    case A::STRING: out.kind = Attribute::Kind::kString; out.s = a.s(); break;
    case A::TENSOR: {
      out.kind = Attribute::Kind::kTensor;
      if (a.t().data_type() == onnx::TensorProto::STRING && string_tensor_allowed) {
        MOSS_ASSIGN_OR_RETURN(auto s, strings_from_proto(a.t()));
        out.strings_t = std::make_shared<const StringTensor>(std::move(s));
        break;
      }
      MOSS_ASSIGN_OR_RETURN(out.t, convert_tensor(a.t()));
      break;
    }
    case A::FLOATS:
      out.kind = Attribute::Kind::kFloats;
      out.floats.assign(a.floats().begin(), a.floats().end());
      break;
    case A::INTS:
      out.kind = Attribute::Kind::kInts;
      out.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case A::STRINGS:
      out.kind = Attribute::Kind::kStrings;
      out.strings.assign(a.strings().begin(), a.strings().end());
      break;
    case A::TYPE_PROTO: {
      out.kind = Attribute::Kind::kType;
      MOSS_ASSIGN_OR_RETURN(auto type, convert_type(a.tp(), a.name()));
      out.type = std::make_shared<const TensorType>(std::move(type));
      break;
    }
    case A::GRAPH: {
      out.kind = Attribute::Kind::kGraph;
      auto sub = load_subgraph(a.g(), parent, st);
      if (!sub.ok()) {
        return sub.status().with_context(fmt::format("subgraph '{}'", a.name()));
      }
      subgraphs.push_back(*sub);
      out.g = std::move(sub).value();
      break;
    }
    default:
      return unimplemented("attribute '{}' has unsupported type {}", a.name(),
                           static_cast<int>(a.type()));
  }
  return out;
}

// The value a name refers to, creating it on first mention.
int value_for(Graph& g, const std::string& name) {
  int id = g.find_value(name);
  return id >= 0 ? id : g.add_value(name);
}

// Every subgraph's captures in one order, each name once; the node reads them as its implicit
// inputs. Subgraphs that do not read a name get an unused value for it (aligned indices).
void bind_captures(Node& node, Graph& g, const std::vector<std::shared_ptr<Graph>>& subgraphs) {
  std::vector<std::string> names;
  for (const auto& sub : subgraphs) {
    for (int c : sub->captures) {
      const std::string& name = sub->values[c].name;
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  }
  for (const auto& sub : subgraphs) {
    std::vector<int> aligned;
    for (const std::string& name : names) {
      const int id = sub->find_value(name);
      aligned.push_back(id >= 0 ? id : sub->add_value(name));
    }
    sub->captures = std::move(aligned);
  }
  for (const std::string& name : names) node.inputs.push_back(value_for(g, name));
  node.implicit_inputs = static_cast<int>(names.size());
}

Status load_graph(const onnx::GraphProto& gp, Graph& g, LoadState& st, bool subgraph) {
  const LoadLimits& limits = st.limits;
  st.nodes += static_cast<size_t>(gp.node_size());
  if (st.nodes > limits.max_nodes) {
    return resource_exhausted("model has {} nodes (limit {})", st.nodes, limits.max_nodes);
  }
  for (const auto& init : gp.initializer()) {
    if (init.name().empty()) return invalid_argument("an initializer has no name");
    if (g.find_value(init.name()) >= 0) {
      return invalid_argument("initializer '{}' is defined twice", init.name());
    }
    int id = g.add_value(init.name());
    MOSS_ASSIGN_OR_RETURN(g.values[id].constant, convert_tensor(init));
  }
  if (gp.sparse_initializer_size() > 0) return unimplemented("sparse initializers are not supported");
  for (const auto& in : gp.input()) {
    int id = value_for(g, in.name());
    if (in.name().empty()) return invalid_argument("a graph input has no name");
    if (g.values[id].constant) continue;  // old exporters list initializers as inputs too
    if (subgraph && !in.has_type()) {  // a body's inputs may leave their type to the operator
      g.inputs.push_back(id);
      continue;
    }
    MOSS_ASSIGN_OR_RETURN(auto type, convert_type(in.type(), in.name()));
    g.values[id].type = std::move(type);
    g.inputs.push_back(id);
  }
  for (const auto& vi : gp.value_info()) {
    int id = g.find_value(vi.name());
    if (id >= 0 || !vi.has_type()) continue;
  }
  for (int n = 0; n < gp.node_size(); ++n) {
    const auto& np = gp.node(n);
    Node node;
    node.name = np.name().empty() ? fmt::format("#{}", n) : np.name();
    node.op_type = np.op_type();
    node.domain = np.domain() == "ai.onnx" ? "" : np.domain();
    auto os = g.opsets.find(node.domain);
    if (os == g.opsets.end()) {
      return invalid_argument("{}: domain '{}' is not imported by the model", node.label(),
                              node.domain);
    }
    node.opset = static_cast<int>(os->second);
    for (const auto& in : np.input()) {
      node.inputs.push_back(in.empty() ? kNoValue : value_for(g, in));
    }
    for (const auto& out : np.output()) {
      node.outputs.push_back(out.empty() ? kNoValue : value_for(g, out));
    }
    std::vector<std::shared_ptr<Graph>> subgraphs;
    for (const auto& a : np.attribute()) {
      if (!a.ref_attr_name().empty()) {
        return unimplemented("{}: attribute references (functions) are not supported", node.label());
      }
      auto attr = convert_attribute(a, g, st, subgraphs,
                                    node.op_type == "Constant" && node.domain.empty());
      if (!attr.ok()) return attr.status().with_context(node.label());
      if (!node.attrs.emplace(a.name(), std::move(attr).value()).second) {
        return invalid_argument("{}: attribute '{}' given twice", node.label(), a.name());
      }
    }
    if (!subgraphs.empty()) bind_captures(node, g, subgraphs);
    if (g.values.size() > limits.max_values || st.values + g.values.size() > limits.max_values) {
      return resource_exhausted("model has more than {} values", limits.max_values);
    }
    g.nodes.push_back(std::move(node));
  }
  if (gp.output_size() == 0) return invalid_argument("graph has no outputs");
  for (const auto& out : gp.output()) {
    int id = g.find_value(out.name());
    if (id < 0 && subgraph && !out.name().empty()) id = g.add_value(out.name());  // outer value
    if (id < 0) return invalid_argument("graph output '{}' is never produced", out.name());
    if (out.has_type() && out.type().value_case() != onnx::TypeProto::VALUE_NOT_SET) {
      auto type = convert_type(out.type(), out.name());
      if (type.ok()) g.values[id].type = std::move(type).value();
    }
    g.outputs.push_back(id);
  }
  st.values += g.values.size();
  return Status::Ok();
}

}  // namespace

Result<Graph> load_onnx(std::span<const uint8_t> bytes, const LoadLimits& limits) {
  if (bytes.size() > limits.max_model_bytes) {
    return resource_exhausted("model is {} bytes (limit {})", bytes.size(), limits.max_model_bytes);
  }
  if (bytes.empty()) return invalid_argument("model is empty");
  onnx::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return invalid_argument("model is not a valid ONNX ModelProto (truncated or corrupt)");
  }
  if (!model.has_graph()) return invalid_argument("model has no graph");
  Graph g;
  g.ir_version = model.ir_version();
  for (const auto& os : model.opset_import()) {
    std::string domain = os.domain() == "ai.onnx" ? "" : os.domain();
    g.opsets[domain] = os.version();
  }
  // IR version 3+ models must import ai.onnx; older ones implied opset 1..
  if (g.opsets.find("") == g.opsets.end()) g.opsets[""] = 1;
  LoadState st{limits};
  MOSS_RETURN_IF_ERROR(load_graph(model.graph(), g, st, false));
  MOSS_RETURN_IF_ERROR(g.topo_sort());
  return g;
}

}  // namespace moss::engine
