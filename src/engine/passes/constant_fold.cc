#include "engine/kernels/evaluate.h"
#include "engine/kernels/registry.h"
#include "engine/passes/passes.h"

namespace moss::engine {

Status fold_constants(Graph& g, size_t max_bytes, bool keep_dequantize) {
  std::vector<Node> kept;
  kept.reserve(g.nodes.size());
  for (Node& node : g.nodes) {
    bool all_const = true;
    for (int in : node.inputs) {
      if (in != kNoValue && !g.values[in].constant) all_const = false;
    }
    const OpKernel* k = find_kernel(node);
    const bool keep_dq = keep_dequantize && node.op_type == "DequantizeLinear" && node.domain.empty();
    // Sequences, optionals and strings (object.h) are never constants; nor are unseeded random nodes.
    if (!all_const || !k || k->run_dynamic || keep_dq || !foldable(*k, node) ||
        object_kernel_for(node, *k, false)) {
      kept.push_back(std::move(node));
      continue;
    }
    std::vector<TensorInfo> infos(node.inputs.size());
    std::vector<const TensorInfo*> ptrs(node.inputs.size(), nullptr);
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      if (node.inputs[i] == kNoValue) continue;
      const auto& c = g.values[node.inputs[i]].constant;
      infos[i] = TensorInfo{c->dtype(), c->shape(), c};
      ptrs[i] = &infos[i];
    }
    std::vector<TensorInfo> out;
    MOSS_RETURN_IF_ERROR(k->infer(node, ptrs, out));
    size_t bytes = 0;
    for (const auto& o : out) {
      MOSS_ASSIGN_OR_RETURN(int64_t n, checked_numel(o.shape, o.dtype));
      bytes += static_cast<size_t>(n) * dtype_size(o.dtype);
    }
    if (bytes > max_bytes || out.size() < node.outputs.size()) {
      kept.push_back(std::move(node));
      continue;
    }
    MOSS_ASSIGN_OR_RETURN(auto values, evaluate_node(node, *k, ptrs, out));
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (node.outputs[i] != kNoValue) g.values[node.outputs[i]].constant = values[i];
    }
  }
  g.nodes = std::move(kept);
  g.index_producers();
  return Status::Ok();
}

}  // namespace moss::engine
