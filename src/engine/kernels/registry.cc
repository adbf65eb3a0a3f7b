#include "engine/kernels/registry.h"

#include "engine/kernels/group_norm.h"
#include "engine/kernels/onednn_bridge.h"
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/quant/quant_kernels.h"

#include <algorithm>
#include <map>

namespace moss::engine {
namespace {

const std::map<std::string, std::vector<OpKernel>>& table() {
  static const auto* t = [] {
    auto* m = new std::map<std::string, std::vector<OpKernel>>();
    for (auto list : {ref::elementwise_kernels(), ref::unary_kernels(), ref::binary_kernels(),
                      ref::cast_kernels(), ref::shape_kernels(), ref::conv_pool_kernels(),
                      ref::nn_kernels(), ref::reduce_kernels(), ref::resize_kernels(),
                      ref::softmax_loss_kernels(), ref::gather_scatter_kernels(),
                      ref::index_kernels(), ref::dropout_kernels(), ref::normalization_kernels(),
                      ref::quantize_kernels(), ref::topk_kernels(),
                      ref::einsum_kernels(), ref::conv_transpose_kernels(),
                      ref::signal_kernels(), ref::det_kernels(),
                      ref::conv_integer_kernels(), ref::max_unpool_kernels(),
                      ref::grid_sample_kernels(), ref::affine_grid_kernels(),
                      ref::col2im_kernels(), ref::deform_conv_kernels(),
                      ref::control_flow_kernels(),
                      ref::data_dependent_kernels(), ref::recurrent_kernels(),
                      ref::sequence_kernels(), ref::string_kernels(),
                      ref::roi_align_kernels(), ref::random_kernels(),
                      ref::mel_weight_matrix_kernels()}) {
      for (const OpKernel& k : list) (*m)[k.op_type].push_back(k);
    }
    // oneDNN first, reference last: the reference run() is the fallback whenever prepare()
    // declines (attribute combination, non-constant weights, creation failure).
    for (auto& [op, list] : *m) {
      if (PrepareFn p = onednn_prepare_for(op)) list.front().prepare = p;
      if (PrepareFn p = quant_prepare_for(op)) list.front().prepare = p;
    }
    return m;
  }();
  return *t;
}

const std::map<std::string, OpKernel>& object_variants() {
  static const auto* t = [] {
    auto* m = new std::map<std::string, OpKernel>();
    for (const OpKernel& k : ref::object_variant_kernels()) m->emplace(k.op_type, k);
    return m;
  }();
  return *t;
}

// com.microsoft operators (ONNX Runtime's contrib set), looked up only for that domain.
const std::map<std::string, OpKernel>& contrib_table() {
  static const auto* t = [] {
    auto* m = new std::map<std::string, OpKernel>();
    for (const OpKernel& k : ref::contrib_kernels()) m->emplace(k.op_type, k);
    for (const OpKernel& k : quant_contrib_kernels()) m->emplace(k.op_type, k);
    for (const OpKernel& k : group_norm_kernels()) m->emplace(k.op_type, k);
    return m;
  }();
  return *t;
}

}  // namespace

const OpKernel* object_kernel_for(const Node& node, const OpKernel& k, bool object_in) {
  if (k.run_object) return &k;
  if (!node.domain.empty()) return nullptr;
  auto it = object_variants().find(node.op_type);
  if (it == object_variants().end()) return nullptr;
  const OpKernel& alt = it->second;
  return object_in || (alt.makes_objects && alt.makes_objects(node)) ? &alt : nullptr;
}

const OpKernel* find_kernel(const Node& node) {
  if (node.domain == "com.microsoft") {
    auto it = contrib_table().find(node.op_type);
    return it == contrib_table().end() ? nullptr : &it->second;
  }
  if (!node.domain.empty()) return nullptr;
  auto it = table().find(node.op_type);
  return it == table().end() || it->second.empty() ? nullptr : &it->second.front();
}

Result<const OpKernel*> kernel_for(const Node& node) {
  if (const OpKernel* k = find_kernel(node)) return k;
  if (!node.domain.empty()) {
    return unimplemented("{}: operator '{}' of domain '{}' (opset {}) is not supported (unknown domain)",
                         node.label(), node.op_type, node.domain, node.opset);
  }
  return unimplemented("{}: operator '{}' of domain 'ai.onnx' (opset {}) is not supported",
                       node.label(), node.op_type, node.opset);
}

std::vector<std::string> supported_operators() {
  std::vector<std::string> ops;
  for (const auto& [name, list] : table()) ops.push_back(name);
  return ops;
}

}  // namespace moss::engine
