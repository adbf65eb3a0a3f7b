#include "engine/planner/plan.h"

#include "engine/kernels/evaluate.h"
#include "engine/kernels/onednn_bridge.h"

namespace moss::engine {
namespace {

Status bind_inputs(const Graph& g, const Binding& b, Plan& p) {
  const auto& shapes = b.shapes;
  if (shapes.size() != g.inputs.size()) {
    return invalid_argument("model has {} inputs, {} shapes given", g.inputs.size(), shapes.size());
  }
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const Value& v = g.values[g.inputs[i]];
    TensorInfo& ti = p.info[g.inputs[i]];
    ti.dtype = v.type ? v.type->dtype : DType::kFloat32;
    ti.shape = shapes[i];
    if (i < b.values.size() && b.values[i]) {
      if (b.values[i]->dtype() != ti.dtype || b.values[i]->shape() != ti.shape) {
        return internal_error("input '{}': bound value does not match its shape", v.name);
      }
      ti.value = b.values[i];
    }
    MOSS_RETURN_IF_ERROR(checked_numel(ti.shape, ti.dtype).status().with_context(
        fmt::format("input '{}'", v.name)));
    if (v.type && v.type->has_shape) {
      const auto& dims = v.type->dims;
      if (dims.size() != ti.shape.size()) {
        return invalid_argument("input '{}' has rank {}, the model expects {}", v.name,
                                ti.shape.size(), dims.size());
      }
      for (size_t d = 0; d < dims.size(); ++d) {
        if (dims[d].value >= 0 && dims[d].value != ti.shape[d]) {
          return invalid_argument("input '{}' has shape {}, dimension {} must be {}", v.name,
                                  shape_to_string(ti.shape), d, dims[d].value);
        }
      }
    }
  }
  return Status::Ok();
}

}  // namespace

std::string Binding::key() const {
  std::string k;
  auto put = [&k](const void* p, size_t n) { k.append(static_cast<const char*>(p), n); };
  for (size_t i = 0; i < shapes.size(); ++i) {
    const uint64_t r = shapes[i].size();
    put(&r, sizeof r);
    put(shapes[i].data(), r * sizeof(int64_t));
    const bool has = i < values.size() && values[i];
    put(&has, 1);
    if (has) {
      const uint64_t n = values[i]->nbytes();
      put(&n, sizeof n);
      put(values[i]->raw(), n);
    }
  }
  return k;
}

Result<std::shared_ptr<const Plan>> build_plan(const Graph& g,
                                               const std::vector<const OpKernel*>& kernels,
                                               const Binding& binding, int threads) {
  auto plan = std::make_shared<Plan>();
  Plan& p = *plan;
  p.key = binding.key();
  p.info.resize(g.values.size());
  p.offset.assign(g.values.size(), -1);
  for (size_t v = 0; v < g.values.size(); ++v) {
    if (const auto& c = g.values[v].constant) p.info[v] = TensorInfo{c->dtype(), c->shape(), c};
  }
  MOSS_RETURN_IF_ERROR(bind_inputs(g, binding, p));

  // Shape inference in topological order; nodes whose inputs are all known fold right here.
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    const OpKernel& k = *kernels[n];
    std::vector<const TensorInfo*> in(node.inputs.size(), nullptr);
    bool known = true;
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      if (node.inputs[i] == kNoValue) continue;
      in[i] = &p.info[node.inputs[i]];
      known &= in[i]->value != nullptr || k.reads_shapes_only;
    }
    std::vector<TensorInfo> out;
    MOSS_RETURN_IF_ERROR(k.infer(node, in, out));
    if (out.size() < node.outputs.size()) {
      for (size_t i = out.size(); i < node.outputs.size(); ++i) {
        if (node.outputs[i] != kNoValue) {
          return unimplemented("{}: output {} is not supported", node.label(), i);
        }
      }
    }
    size_t bytes = 0;
    for (const TensorInfo& o : out) {
      auto numel = checked_numel(o.shape, o.dtype);
      if (!numel.ok()) {
        return invalid_argument("{}: output shape {} is invalid: {}", node.label(),
                                shape_to_string(o.shape), numel.status().message());
      }
      bytes += static_cast<size_t>(*numel) * dtype_size(o.dtype);
    }
    const bool has_values = !out.empty() && out[0].value != nullptr;
    if (known && !has_values && bytes <= (size_t{16} << 20)) {
      MOSS_ASSIGN_OR_RETURN(auto values, evaluate_node(node, k, in, out));
      for (size_t i = 0; i < out.size(); ++i) out[i].value = values[i];
    }
    bool folded = true;
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (node.outputs[i] != kNoValue) folded &= out[i].value != nullptr;
    }
    if (!folded) {
      std::shared_ptr<const PreparedKernel> prepared;
      if (k.prepare && !onednn_disabled()) prepared = k.prepare(node, in, out, threads);
      if (prepared) {
        p.scratch_bytes = std::max(p.scratch_bytes, prepared->scratch_bytes());
        p.prepared_weights_bytes += prepared->weights_bytes();
      }
      p.steps.push_back(static_cast<int>(n));
      p.kernels.push_back(&k);
      p.prepared.push_back(std::move(prepared));
    }
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (node.outputs[i] != kNoValue) p.info[node.outputs[i]] = std::move(out[i]);
    }
  }

  // Liveness over steps: graph inputs are born before step 0, graph outputs live to the end.
  const int64_t end = static_cast<int64_t>(p.steps.size());
  std::vector<int64_t> first(g.values.size(), -2), last(g.values.size(), -2);
  for (int in : g.inputs) {
    if (!p.info[in].value) first[in] = last[in] = -1;
  }
  for (int64_t s = 0; s < end; ++s) {
    const Node& node = g.nodes[p.steps[s]];
    for (int in : node.inputs) {
      if (in != kNoValue && first[in] != -2 && !p.info[in].value) last[in] = std::max(last[in], s);
    }
    for (int o : node.outputs) {
      if (o != kNoValue && !p.info[o].value) first[o] = last[o] = s;
    }
  }
  for (int o : g.outputs) {
    if (first[o] != -2) last[o] = end;
  }
  std::vector<Interval> items;
  std::vector<int> ids;
  for (size_t v = 0; v < g.values.size(); ++v) {
    if (first[v] == -2 || p.info[v].value) continue;
    const size_t bytes = static_cast<size_t>(p.info[v].numel()) * dtype_size(p.info[v].dtype);
    items.push_back(Interval{first[v], last[v], bytes});
    ids.push_back(static_cast<int>(v));
    p.unshared_bytes += (bytes + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
  }
  auto offsets = assign_offsets(items, p.arena_bytes);
  for (size_t i = 0; i < ids.size(); ++i) p.offset[ids[i]] = offsets[i];
  return std::shared_ptr<const Plan>(std::move(plan));
}

}  // namespace moss::engine
