// String tensors through the ordinary tensor kernels: data movement (Gather, Concat, Reshape,
// Slice, Transpose, Where, ...), Shape/Size, and Equal. Each string is replaced by an int64
// stand-in, the operator's tensor kernel runs on the stand-ins (so attributes, indices and shapes
// are checked exactly as for numbers), and the result is mapped back:
//   - data movement: the stand-in is the string's position among the node's string inputs, and
//     every output position is replaced by its string;
//   - Equal: the stand-in is the string's rank among the distinct strings of both inputs, so
//     equal stand-ins mean equal strings; the bool output is the answer.
// Strings are request data: errors name positions and types, never contents.
#include "engine/kernels/evaluate.h"
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/registry.h"

#include <algorithm>
#include <string_view>

namespace moss::engine::ref {
namespace {

using Objects = std::vector<ObjectPtr>;

enum class Output : uint8_t { kStrings, kNumbers };  // what the node outputs

struct StandIn {
  const char* op;
  uint32_t data_inputs;  // bit i: input i carries the values (strings allowed); ~0u: every input
  bool compare;          // Equal: ranks, else positions
  Output outputs;
};

constexpr StandIn kStandIns[] = {
    {"Gather", 0b1, false, Output::kStrings},        {"GatherElements", 0b1, false, Output::kStrings},
    {"GatherND", 0b1, false, Output::kStrings},      {"Concat", ~0u, false, Output::kStrings},
    {"Reshape", 0b1, false, Output::kStrings},       {"Squeeze", 0b1, false, Output::kStrings},
    {"Unsqueeze", 0b1, false, Output::kStrings},     {"Flatten", 0b1, false, Output::kStrings},
    {"Transpose", 0b1, false, Output::kStrings},     {"Slice", 0b1, false, Output::kStrings},
    {"Expand", 0b1, false, Output::kStrings},        {"Tile", 0b1, false, Output::kStrings},
    {"Split", 0b1, false, Output::kStrings},         {"Where", 0b110, false, Output::kStrings},
    {"Shape", 0b1, false, Output::kNumbers},         {"Size", 0b1, false, Output::kNumbers},
    {"Equal", 0b11, true, Output::kNumbers},
};

const StandIn& stand_in_of(const Node& node) {
  for (const StandIn& s : kStandIns) {
    if (node.op_type == s.op) return s;
  }
  return kStandIns[0];  // unreachable: only registered operators get here
}

bool is_data(const StandIn& s, size_t i) { return i < 32 && ((s.data_inputs >> i) & 1u); }

Result<Objects> run_stand_in(const Node& node, std::span<const ObjectPtr> in, SubgraphRunner&) {
  const StandIn& s = stand_in_of(node);
  const OpKernel* k = find_kernel(node);
  if (!k || !k->run) return internal_error("{}: no tensor kernel for string stand-ins", node.label());
  // Every data input a string tensor (this kernel runs because one of them is), every other
  // input (indices, shapes, axes, a condition) a tensor of numbers.
  std::vector<const StringTensor*> strings(in.size(), nullptr);
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i]) continue;
    if (!is_data(s, i)) {
      if (in[i]->is_tensor()) continue;
      return invalid_argument("{}: input {} is a {}, expected a tensor of numbers", node.label(), i,
                              type_name(type_of(*in[i])));
    }
    if (in[i]->kind == Object::Kind::kStrings) strings[i] = in[i]->strings.get();
  }
  const auto first = std::find_if(strings.begin(), strings.end(), [](const StringTensor* p) { return p; });
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i] || !is_data(s, i) || strings[i]) continue;
    if (first == strings.end()) {
      return invalid_argument("{}: input {} is a {}, expected a tensor", node.label(), i, type_name(type_of(*in[i])));
    }
    return invalid_argument("{}: input {} is a {}, expected a string tensor like input {}", node.label(), i,
                            type_name(type_of(*in[i])), first - strings.begin());
  }
  // The stand-ins: positions into `pool` (data movement) or ranks among the distinct strings.
  std::vector<const std::string*> pool;
  for (const StringTensor* st : strings) {
    if (st) {
      for (const std::string& str : st->data) pool.push_back(&str);
    }
  }
  std::vector<std::string_view> sorted;
  if (s.compare) {
    for (const std::string* p : pool) sorted.emplace_back(*p);
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  }
  std::vector<TensorInfo> infos(in.size());
  std::vector<const TensorInfo*> ptrs(in.size(), nullptr);
  int64_t next = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i]) continue;
    if (strings[i]) {
      const StringTensor& st = *strings[i];
      MOSS_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(DType::kInt64, st.shape));
      if (static_cast<size_t>(t.numel()) != st.data.size()) {
        return invalid_argument("{}: input {} holds {} strings for shape {}", node.label(), i, st.data.size(),
                                shape_to_string(st.shape));
      }
      int64_t* d = t.data<int64_t>();
      for (size_t j = 0; j < st.data.size(); ++j) {
        d[j] = s.compare ? std::lower_bound(sorted.begin(), sorted.end(), std::string_view(st.data[j])) - sorted.begin()
                         : next++;
      }
      infos[i].value = std::make_shared<const Tensor>(std::move(t));
    } else {
      infos[i].value = in[i]->tensor;
    }
    infos[i].dtype = infos[i].value->dtype();
    infos[i].shape = infos[i].value->shape();
    ptrs[i] = &infos[i];
  }
  std::vector<TensorInfo> out_info;
  MOSS_RETURN_IF_ERROR(k->infer(node, ptrs, out_info));
  MOSS_ASSIGN_OR_RETURN(auto outs, evaluate_node(node, *k, ptrs, out_info));
  Objects result;
  for (auto& t : outs) {
    if (s.outputs == Output::kNumbers) {
      result.push_back(tensor_object(std::move(t)));
      continue;
    }
    // Positions back to strings; what a node may build is bounded like any tensor.
    const int64_t* pos = t->data<int64_t>();
    size_t bytes = 0;
    for (int64_t j = 0; j < t->numel(); ++j) {
      if (pos[j] < 0 || static_cast<size_t>(pos[j]) >= pool.size()) {
        return internal_error("{}: string position out of range", node.label());
      }
      bytes += pool[static_cast<size_t>(pos[j])]->size();
      if (bytes > kMaxTensorBytes) {
        return resource_exhausted("{}: the output strings exceed {} bytes", node.label(), kMaxTensorBytes);
      }
    }
    StringTensor st;
    st.shape = t->shape();
    st.data.reserve(static_cast<size_t>(t->numel()));
    for (int64_t j = 0; j < t->numel(); ++j) st.data.push_back(*pool[static_cast<size_t>(pos[j])]);
    result.push_back(strings_object(std::move(st)));
  }
  return result;
}

}  // namespace

std::vector<OpKernel> string_stand_in_kernels() {
  std::vector<OpKernel> ks;
  for (const StandIn& s : kStandIns) ks.push_back(object_kernel(s.op, infer_object_outputs, run_stand_in));
  return ks;
}

}  // namespace moss::engine::ref
