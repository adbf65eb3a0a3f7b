// Graph IR: what the loader produces and the passes, planner and runtime consume.
//
// Values are numbered; a node refers to its inputs and outputs by value id (kNoValue for an
// omitted optional input). Constants (initializers, Constant nodes, folded results) are owned by
// the graph as Tensors. A Graph is a plain value: the compiled model keeps one immutable copy.
#pragma once

#include "common/status.h"
#include "common/tensor.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace moss::engine {

inline constexpr int kNoValue = -1;

// A dimension is either known (value >= 0) or symbolic (value < 0, named by `param`).
struct Dim {
  int64_t value = -1;
  std::string param;
};

// A tensor type, or a sequence/optional wrapping one (graph/object.h: values of those kinds run
// only in the interpreter). dtype/dims describe the innermost tensor.
enum class Container : uint8_t { kSequence, kOptional };
struct TensorType {
  DType dtype = DType::kFloat32;
  bool has_shape = false;
  std::vector<Dim> dims;
  bool is_string = false;               // element type string (dtype unused)
  std::vector<Container> containers;    // outermost first; empty for a plain tensor
  // A plain tensor of numbers: what the arena plan, the worker and `moss model run` handle.
  bool is_plain() const { return !is_string && containers.empty(); }
};

class Graph;
struct StringTensor;  // graph/object.h

// An ONNX attribute, converted to plain C++ (tensor attributes become Tensors, graph attributes
// -- If's branches, Loop's and Scan's bodies -- become Graphs).
struct Attribute {
  enum class Kind { kFloat, kInt, kString, kTensor, kFloats, kInts, kStrings, kGraph, kType };
  Kind kind = Kind::kInt;
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::shared_ptr<const Tensor> t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::shared_ptr<const Graph> g;
  std::shared_ptr<const TensorType> type;  // kType (Optional's `type`)
  // kTensor of element type string (Constant's `value` only; t is then null).
  std::shared_ptr<const StringTensor> strings_t;
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;
  int opset = 0;  // version of the node's domain the model imports
  std::vector<int> inputs;
  std::vector<int> outputs;
  std::map<std::string, Attribute> attrs;
  // The last `implicit_inputs` inputs are values of this graph that the node's subgraphs read
  // from the enclosing scope (Graph::captures of each subgraph, in the same order).
  int implicit_inputs = 0;

  const Attribute* attr(const std::string& key) const {
    auto it = attrs.find(key);
    return it == attrs.end() ? nullptr : &it->second;
  }
  int64_t attr_int(const std::string& key, int64_t def) const;
  float attr_float(const std::string& key, float def) const;
  std::string attr_string(const std::string& key, const std::string& def) const;
  const Graph* attr_graph(const std::string& key) const;  // null when absent
  size_t explicit_inputs() const { return inputs.size() - static_cast<size_t>(implicit_inputs); }
  std::vector<int64_t> attr_ints(const std::string& key) const;  // empty when absent
  bool has_input(size_t i) const { return i < inputs.size() && inputs[i] != kNoValue; }
  // "node 'name' (Op)" for error messages.
  std::string label() const;
};

struct Value {
  std::string name;
  std::optional<TensorType> type;       // declared type, if any
  std::shared_ptr<const Tensor> constant;  // set for initializers and folded values
  int producer = -1;                    // node index, -1 for graph inputs and constants
  // A plan snapshot's stand-in for a weight it holds only packed (runtime/plan_snapshot.h):
  // `constant` is zeros of its type shared by all such weights, at least as large as each, so
  // its shape is stand_in_shape. Read only through constant_shape().
  bool stand_in = false;
  std::vector<int64_t> stand_in_shape;
  const std::vector<int64_t>& constant_shape() const {
    return stand_in ? stand_in_shape : constant->shape();
  }
};

class Graph {
 public:
  std::vector<Value> values;
  std::vector<Node> nodes;  // in topological order after topo_sort()
  std::vector<int> inputs;  // runtime inputs (initializers excluded)
  std::vector<int> outputs;
  int64_t ir_version = 0;
  std::map<std::string, int64_t> opsets;  // domain ("" = ai.onnx) -> version
  // Subgraphs only: values read from the enclosing scope by name. captures[i] receives the
  // owning node's implicit input i. Defined before any node runs, like inputs.
  std::vector<int> captures;

  int add_value(std::string name);
  // Value id by name, or -1.
  int find_value(const std::string& name) const;

  // Orders nodes so every input is produced before use; fails on a cycle or an undefined input.
  Status topo_sort();
  // Checks ids are in range, each value has at most one producer, graph outputs are defined.
  Status validate() const;
  // Recomputes Value::producer from nodes.
  void index_producers();

 private:
  std::map<std::string, int> by_name_;
};

}  // namespace moss::engine
