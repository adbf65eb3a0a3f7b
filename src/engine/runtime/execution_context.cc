#include "engine/runtime/execution_context.h"

#include "engine/kernels/evaluate.h"
#include "engine/kernels/onednn/onednn_ops.h"
#include "engine/runtime/interpreter.h"

#include <chrono>
#include <cstring>
#include <optional>

namespace moss::engine {

ExecutionContext::ExecutionContext(std::shared_ptr<const CompiledModel> model)
    : model_(std::move(model)) {}

ExecutionContext::~ExecutionContext() = default;

Status ExecutionContext::bind(const std::vector<std::vector<int64_t>>& input_shapes) {
  for (bool b : model_->value_bound()) {
    if (b) return failed_precondition("the model's shapes depend on input values; bind at run()");
  }
  return bind(Binding{input_shapes, {}});
}

Status ExecutionContext::bind(const Binding& binding) {
  if (plan_ && plan_->key == binding.key()) return Status::Ok();
  MOSS_ASSIGN_OR_RETURN(auto plan, model_->plan_for(binding));
  if (plan->arena_bytes > arena_capacity_) {
    const size_t blocks = (plan->arena_bytes + kArenaAlignment - 1) / kArenaAlignment;
    arena_.reset(new (std::nothrow) Block[blocks]);
    if (!arena_) {
      arena_capacity_ = 0;
      plan_.reset();
      return resource_exhausted("cannot allocate a {}-byte arena", plan->arena_bytes);
    }
    arena_capacity_ = blocks * kArenaAlignment;
  }
  if (plan->scratch_bytes > 0 || !plan->prepared.empty()) {
    bool any = false;
    for (const auto& k : plan->prepared) any |= k != nullptr;
    if (any && !dnnl_scratch_) {
      MOSS_ASSIGN_OR_RETURN(auto s, onednn::OnednnScratch::create());
      dnnl_scratch_ = std::make_unique<onednn::OnednnScratch>(std::move(s));
      scratch_.dnnl = dnnl_scratch_.get();
    }
    if (dnnl_scratch_) dnnl_scratch_->reserve(plan->scratch_bytes);
  }
  plan_ = std::move(plan);
  return Status::Ok();
}

Result<std::vector<NamedTensor>> ExecutionContext::run(std::span<const NamedTensor> inputs) {
  return run_impl(inputs, {}, nullptr);
}

Result<std::vector<NamedObject>> ExecutionContext::run_objects(std::span<const NamedObject> inputs) {
  const auto& decl = model_->inputs();
  std::vector<NamedTensor> tensors;
  std::vector<ObjectPtr> objects(decl.size());
  for (const NamedObject& no : inputs) {
    size_t i = 0;
    while (i < decl.size() && decl[i].name != no.name) ++i;
    if (i == decl.size()) return invalid_argument("model has no input named '{}'", no.name);
    if (!no.value) return invalid_argument("input '{}' has no value", no.name);
    if (decl[i].object_type) {
      if (objects[i]) return invalid_argument("input '{}' given twice", no.name);
      if (!type_matches(*no.value, *decl[i].object_type)) {
        return invalid_argument("input '{}' is a {}, the model expects {}", no.name,
                                type_name(type_of(*no.value)), type_name(*decl[i].object_type));
      }
      objects[i] = no.value;
    } else if (no.value->is_tensor()) {
      tensors.push_back(NamedTensor{no.name, *no.value->tensor});
    } else {
      return invalid_argument("input '{}' is a {}, the model expects a tensor", no.name,
                              type_name(type_of(*no.value)));
    }
  }
  std::vector<ObjectPtr> object_out;
  MOSS_ASSIGN_OR_RETURN(auto outs, run_impl(tensors, objects, &object_out));
  std::vector<NamedObject> result;
  for (size_t i = 0; i < outs.size(); ++i) {
    ObjectPtr o = object_out[i] ? object_out[i]
                                : tensor_object(std::make_shared<const Tensor>(std::move(outs[i].tensor)));
    result.push_back(NamedObject{std::move(outs[i].name), std::move(o)});
  }
  return result;
}

Result<std::vector<NamedTensor>> ExecutionContext::run_impl(std::span<const NamedTensor> inputs,
                                                            std::span<const ObjectPtr> object_in,
                                                            std::vector<ObjectPtr>* object_out) {
  const Graph& g = model_->graph();
  const auto& decl = model_->inputs();
  std::vector<const Tensor*> ordered(decl.size(), nullptr);
  for (const NamedTensor& nt : inputs) {
    size_t i = 0;
    while (i < decl.size() && decl[i].name != nt.name) ++i;
    if (i == decl.size()) return invalid_argument("model has no input named '{}'", nt.name);
    if (ordered[i]) return invalid_argument("input '{}' given twice", nt.name);
    if (nt.tensor.dtype() != decl[i].dtype) {
      return invalid_argument("input '{}' is {}, the model expects {}", nt.name,
                              dtype_name(nt.tensor.dtype()), dtype_name(decl[i].dtype));
    }
    ordered[i] = &nt.tensor;
  }
  Binding binding;
  binding.values.resize(decl.size());
  for (size_t i = 0; i < decl.size(); ++i) {
    if (decl[i].object_type) {  // bound in the tail
      if (i >= object_in.size() || !object_in[i]) {
        return invalid_argument("input '{}' ({}) is missing", decl[i].name,
                                type_name(*decl[i].object_type));
      }
      binding.shapes.emplace_back();
      continue;
    }
    if (!ordered[i]) return invalid_argument("input '{}' is missing", decl[i].name);
    binding.shapes.push_back(ordered[i]->shape());
    if (model_->value_bound()[i]) binding.values[i] = std::make_shared<const Tensor>(*ordered[i]);
  }
  MOSS_RETURN_IF_ERROR(bind(binding));
  const Plan& p = *plan_;
  uint8_t* base = arena();
  for (size_t i = 0; i < decl.size(); ++i) {
    const int v = g.inputs[i];
    if (ordered[i] && p.offset[v] >= 0 && ordered[i]->nbytes() > 0) {
      std::memcpy(base + p.offset[v], ordered[i]->raw(), ordered[i]->nbytes());
    }
  }
  auto view = [&](int v) -> View {
    const TensorInfo& ti = p.info[v];
    if (ti.value) return view_of(*ti.value);
    if (p.offset[v] < 0) return View{ti.dtype, ti.shape, nullptr, ti.numel()};  // released weight
    return View{ti.dtype, ti.shape, base + p.offset[v], ti.numel()};
  };
  if (step_ns_) step_ns_->resize(p.steps.size(), 0.0);
  for (size_t s = 0; s < p.steps.size(); ++s) {
    const auto started = step_ns_ ? std::chrono::steady_clock::now()
                                  : std::chrono::steady_clock::time_point{};
    const Node& node = g.nodes[p.steps[s]];
    const auto& ins = p.step_inputs[s];
    const auto& outs = p.step_outputs[s];
    in_views_.assign(ins.size(), View{});
    out_views_.assign(outs.size(), View{});
    for (size_t i = 0; i < ins.size(); ++i) {
      if (ins[i] != kNoValue) in_views_[i] = view(ins[i]);
    }
    for (size_t i = 0; i < outs.size(); ++i) {
      if (outs[i] != kNoValue) out_views_[i] = view(outs[i]);
    }
    if (p.prepared[s]) {
      MOSS_RETURN_IF_ERROR(p.prepared[s]->run(in_views_, out_views_, scratch_));
    } else {
      MOSS_RETURN_IF_ERROR(p.kernels[s]->run(node, in_views_, out_views_));
    }
    if (step_ns_) {
      (*step_ns_)[s] += std::chrono::duration<double, std::nano>(
                            std::chrono::steady_clock::now() - started).count();
    }
  }
  std::vector<NamedTensor> outputs;
  std::optional<Env> env;
  tail_buffers_ = 0;
  if (!p.tail.empty() || !object_in.empty()) {
    // Data-dependent shapes: the rest runs node by node on per-request tensors.
    env.emplace(g);
    for (int v : p.tail_reads) {
      env->bind(v, view(v));
      env->owned[v] = p.info[v].value;
    }
    for (size_t i = 0; i < object_in.size(); ++i) {
      if (object_in[i]) env->bind_object(g.inputs[i], object_in[i]);
    }
    Interpreter interpreter;
    if (tail_ns_) interpreter.set_node_timer(tail_ns_);
    const Status st = interpreter.run_nodes(g, p.tail, *env);
    tail_buffers_ = interpreter.buffers_allocated();
    MOSS_RETURN_IF_ERROR(st);
  }
  if (object_out) object_out->assign(g.outputs.size(), nullptr);
  for (size_t o = 0; o < g.outputs.size(); ++o) {
    const int v = g.outputs[o];
    if (env && env->objects[v]) {
      if (!object_out) {
        return invalid_argument("output '{}' is a {}: model outputs must be tensors of numbers",
                                g.values[v].name, type_name(type_of(*env->objects[v])));
      }
      (*object_out)[o] = env->objects[v];
      outputs.push_back(NamedTensor{g.values[v].name, Tensor{}});
      continue;
    }
    if (env && env->set[v]) {
      MOSS_ASSIGN_OR_RETURN(Tensor t, tensor_of(env->views[v]));
      outputs.push_back(NamedTensor{g.values[v].name, std::move(t)});
      continue;
    }
    View ov = view(v);
    MOSS_ASSIGN_OR_RETURN(Tensor t, Tensor::from_bytes(ov.dtype, p.info[v].shape,
                                                       {ov.data, static_cast<size_t>(ov.numel) * dtype_size(ov.dtype)}));
    outputs.push_back(NamedTensor{g.values[v].name, std::move(t)});
  }
  return outputs;
}

}  // namespace moss::engine
