#include "engine/runtime/interpreter.h"

#include "engine/kernels/evaluate.h"
#include "engine/kernels/registry.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>

namespace moss::engine {
namespace {

// Subgraph calls nest as deep as the loader allows subgraphs to nest; a bound in case a kernel
// recurses unexpectedly.
inline constexpr int kMaxRunDepth = 32;

Result<View> lookup(const Graph& g, Env& env, int v) {
  if (env.set[v]) return env.views[v];
  if (const auto& c = g.values[v].constant) {
    env.bind(v, view_of(*c));
    return env.views[v];
  }
  return internal_error("value '{}' is not computed before use", g.values[v].name);
}

// A subgraph call passes one value per input and per capture.
Status check_call(const Graph& g, size_t inputs, size_t captures) {
  if (inputs != g.inputs.size() || captures != g.captures.size()) {
    return internal_error("subgraph called with {} inputs and {} captures, it has {} and {}",
                          inputs, captures, g.inputs.size(), g.captures.size());
  }
  return Status::Ok();
}

}  // namespace

void Env::bind_object(int v, ObjectPtr o) {
  if (o->is_tensor()) {
    objects[v].reset();
    owned[v] = o->tensor;
    bind(v, view_of(*owned[v]));
    return;
  }
  objects[v] = std::move(o);
  owned[v].reset();
  bind(v, View{});
}

void Env::set_into(const Graph& g, std::span<const View> outputs) {
  for (size_t i = 0; i < outputs.size() && i < g.outputs.size(); ++i) {
    const int v = g.outputs[i];
    if (!outputs[i].data || std::count(g.outputs.begin(), g.outputs.end(), v) != 1) continue;
    into[v] = outputs[i];
    into_values_.push_back(v);
  }
}

ObjectPtr Env::wrap(int v, std::shared_ptr<const Tensor> t) {
  if (wrappers_.empty()) wrappers_.resize(2 * views.size());
  for (size_t k = 0; k < 2; ++k) {
    auto& w = wrappers_[2 * static_cast<size_t>(v) + k];
    if (!w) w = std::make_shared<Object>();
    // Only this env holds it: whoever had it before has let it go, so it may change.
    if (w.use_count() == 1) {
      w->tensor = std::move(t);
      return w;
    }
  }
  return tensor_object(std::move(t));
}

void Env::release_idle_wrappers() {
  for (auto& w : wrappers_) {
    if (w && w.use_count() == 1) w->tensor.reset();
  }
}

void Env::reset() {
  std::fill(set.begin(), set.end(), false);
  for (auto& o : owned) o.reset();
  for (auto& o : objects) o.reset();
  for (int v : into_values_) into[v] = View{};
  into_values_.clear();
  release_idle_wrappers();
}

// Whether cache holds infer()'s result for these inputs; otherwise records them (valid stays
// false until the caller stores the result).
bool same_inputs(InferCache& cache, std::span<const TensorInfo* const> in) {
  bool same = cache.valid && cache.dtypes.size() == in.size();
  size_t at = 0;
  for (size_t i = 0; same && i < in.size(); ++i) {
    const TensorInfo* t = in[i];
    const int dt = t ? static_cast<int>(t->dtype) : -1;
    const size_t rank = t ? t->shape.size() : 0;
    same = cache.dtypes[i] == dt && cache.ranks[i] == rank && at + rank <= cache.dims.size() &&
           (rank == 0 || std::equal(t->shape.begin(), t->shape.end(), cache.dims.begin() + static_cast<std::ptrdiff_t>(at)));
    at += rank;
  }
  if (same) return true;
  cache.valid = false;
  cache.dtypes.clear();
  cache.ranks.clear();
  cache.dims.clear();
  for (const TensorInfo* t : in) {
    cache.dtypes.push_back(t ? static_cast<int>(t->dtype) : -1);
    cache.ranks.push_back(t ? t->shape.size() : 0);
    if (t) cache.dims.insert(cache.dims.end(), t->shape.begin(), t->shape.end());
  }
  return false;
}

Result<ObjectPtr> object_of(const Graph& g, Env& env, int v) {
  if (env.objects[v]) return env.objects[v];
  if (env.owned[v]) return env.wrap(v, env.owned[v]);
  if (const auto& c = g.values[v].constant; c && !env.set[v]) return env.wrap(v, c);
  MOSS_ASSIGN_OR_RETURN(View view, lookup(g, env, v));
  if (const auto& c = g.values[v].constant; c && view.data == c->raw()) return env.wrap(v, c);
  MOSS_ASSIGN_OR_RETURN(Tensor t, tensor_of(view));
  return tensor_object(std::make_shared<const Tensor>(std::move(t)));
}

Status Interpreter::run_object_node(const Graph& g, const Node& node, const OpKernel& k, Env& env) {
  std::vector<ObjectPtr> in(node.inputs.size());
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    if (node.inputs[i] == kNoValue) continue;
    MOSS_ASSIGN_OR_RETURN(in[i], object_of(g, env, node.inputs[i]));
  }
  if (depth_ >= kMaxRunDepth) {
    return resource_exhausted("{}: subgraphs nest deeper than {}", node.label(), kMaxRunDepth);
  }
  ++depth_;
  auto outs = k.run_object(node, in, *this);
  --depth_;
  if (!outs.ok()) return outs.status();
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    const int v = node.outputs[i];
    if (v == kNoValue) continue;
    if (i >= outs->size() || !(*outs)[i]) {
      return unimplemented("{}: output {} is not produced", node.label(), i);
    }
    env.bind_object(v, std::move((*outs)[i]));
  }
  return Status::Ok();
}

Interpreter::Scratch& Interpreter::scratch() {
  const size_t d = static_cast<size_t>(depth_);
  while (scratch_.size() <= d) scratch_.push_back(std::make_unique<Scratch>());
  return *scratch_[d];
}

Interpreter::FrameLease::FrameLease(Interpreter& interpreter, const Graph& g) {
  auto& f = interpreter.frames_[&g];
  if (!f) f = std::make_unique<Frame>(g);
  if (f->busy) {
    own = std::make_unique<Frame>(g);
  } else {
    f->busy = true;
    frame = f.get();
  }
}

Status Interpreter::run_nodes(const Graph& g, std::span<const int> nodes, Env& env,
                              std::vector<InferCache>* cache) {
  Scratch& sc = scratch();
  auto& in = sc.in;
  auto& out = sc.out;
  auto& infos = sc.infos;
  auto& ptrs = sc.ptrs;
  std::vector<double>* timer = depth_ == 0 ? node_ns_ : nullptr;
  if (timer && timer->size() < nodes.size()) timer->resize(nodes.size(), 0.0);
  for (size_t pos = 0; pos < nodes.size(); ++pos) {
    const int n = nodes[pos];
    const Node& node = g.nodes[n];
    // Adds this node's time on every way out of the iteration.
    struct NodeTimer {
      double* slot;
      std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
      ~NodeTimer() {
        if (slot) {
          *slot += std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - started).count();
        }
      }
    } node_timer{timer ? &(*timer)[pos] : nullptr};
    MOSS_ASSIGN_OR_RETURN(const OpKernel* k, kernel_for(node));
    int object_in = -1;  // first input that is not a tensor
    for (size_t i = 0; i < node.inputs.size() && object_in < 0; ++i) {
      if (node.inputs[i] != kNoValue && env.objects[node.inputs[i]]) object_in = static_cast<int>(i);
    }
    if (const OpKernel* ok = object_kernel_for(node, *k, object_in >= 0)) {
      MOSS_RETURN_IF_ERROR(run_object_node(g, node, *ok, env));
      continue;
    }
    if (object_in >= 0) {
      return invalid_argument("{}: input {} is a {}, the operator takes tensors of numbers",
                              node.label(), object_in,
                              type_name(type_of(*env.objects[node.inputs[object_in]])));
    }
    const size_t ni = node.inputs.size();
    in.assign(ni, View{});
    if (infos.size() < ni) infos.resize(ni);  // kept: their shape vectors keep their storage
    ptrs.assign(ni, nullptr);
    // infer() may be skipped when the shapes repeat and no run-time value decides them.
    bool cacheable = cache != nullptr && !k->run_dynamic;
    for (size_t i = 0; i < ni; ++i) {
      const int v = node.inputs[i];
      if (v == kNoValue) continue;
      MOSS_ASSIGN_OR_RETURN(in[i], lookup(g, env, v));
      TensorInfo& ti = infos[i];
      ti.dtype = in[i].dtype;
      ti.shape.assign(in[i].shape.begin(), in[i].shape.end());
      ti.value.reset();
      const bool shape_input = i < 32 && ((k->value_inputs >> i) & 1u);
      if ((i >= 32 || shape_input) && !g.values[v].constant) cacheable = false;
      if (env.owned[v]) {
        ti.value = env.owned[v];
      } else if (g.values[v].constant) {
        ti.value = g.values[v].constant;
      } else if (shape_input) {
        MOSS_ASSIGN_OR_RETURN(Tensor t, tensor_of(in[i]));
        ti.value = std::make_shared<const Tensor>(std::move(t));
      }
      ptrs[i] = &ti;
    }
    auto& results = sc.results;
    results.clear();
    out.clear();
    if (k->run_dynamic) {
      std::vector<TensorInfo> check;
      MOSS_RETURN_IF_ERROR(k->infer(node, ptrs, check));
      if (depth_ >= kMaxRunDepth) {
        return resource_exhausted("{}: subgraphs nest deeper than {}", node.label(), kMaxRunDepth);
      }
      ++depth_;
      auto outs = k->run_dynamic(node, in, *this);
      --depth_;
      if (!outs.ok()) return outs.status();
      for (Tensor& t : *outs) results.push_back(std::make_shared<const Tensor>(std::move(t)));
    } else {
      InferCache* hit = cacheable ? &(*cache)[static_cast<size_t>(n)] : nullptr;
      std::vector<TensorInfo>* inferred = &sc.inferred;
      if (hit && same_inputs(*hit, ptrs)) {
        inferred = &hit->out;
      } else {
        sc.inferred.clear();  // some infer()s append
        MOSS_RETURN_IF_ERROR(k->infer(node, ptrs, sc.inferred));
        if (hit) {
          hit->out = sc.inferred;
          hit->valid = true;
        }
      }
      const std::vector<TensorInfo>& oi = *inferred;
      bool all_values = oi.size() >= node.outputs.size();
      for (const TensorInfo& o : oi) all_values &= o.value != nullptr;
      if (all_values) {
        for (const TensorInfo& o : oi) results.push_back(o.value);
      } else {
        out.clear();
        for (size_t i = 0; i < oi.size(); ++i) {
          const TensorInfo& o = oi[i];
          // A graph output with a destination of its dtype and shape is written there.
          const int v = i < node.outputs.size() ? node.outputs[i] : kNoValue;
          if (v != kNoValue && env.into[v].data && env.into[v].dtype == o.dtype &&
              std::ranges::equal(env.into[v].shape, o.shape)) {
            out.push_back(env.into[v]);
            results.push_back(nullptr);
            continue;
          }
          auto t = pool_.acquire(o.dtype, o.shape);
          if (!t.ok()) return t.status().with_context(node.label());
          std::shared_ptr<Tensor> owned = std::move(t).value();
          out.push_back(View{owned->dtype(), owned->shape(), owned->raw(), owned->numel()});
          results.push_back(std::move(owned));
        }
        MOSS_RETURN_IF_ERROR(k->run(node, in, out));
      }
    }
    // The kept infos must not hold inputs alive (the pool reuses only unreferenced buffers).
    for (size_t i = 0; i < ni; ++i) infos[i].value.reset();
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      const int v = node.outputs[i];
      if (v == kNoValue) continue;
      if (i < results.size() && !results[i] && i < out.size() && env.into[v].data &&
          out[i].data == env.into[v].data) {
        env.owned[v].reset();  // written into its destination
        env.bind(v, out[i]);
        continue;
      }
      if (i >= results.size() || !results[i]) {
        return unimplemented("{}: output {} is not produced", node.label(), i);
      }
      env.owned[v] = std::move(results[i]);
      env.bind(v, view_of(*env.owned[v]));
    }
  }
  return Status::Ok();
}

Status Interpreter::run_all(const Graph& g, Env& env, std::vector<InferCache>* cache) {
  std::vector<int>& all = scratch().all;
  if (all.size() != g.nodes.size()) {
    all.resize(g.nodes.size());
    std::iota(all.begin(), all.end(), 0);
  }
  // Kept in this level's scratch: nested runs use a deeper level's, so the list stays put.
  return run_nodes(g, all, env, cache);
}

Status Interpreter::bind_views(const Graph& g, Env& env, std::span<const View> inputs,
                               std::span<const View> captures) {
  MOSS_RETURN_IF_ERROR(check_call(g, inputs.size(), captures.size()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Value& v = g.values[g.inputs[i]];
    if (v.type && (!v.type->is_plain() || inputs[i].dtype != v.type->dtype)) {
      return invalid_argument("subgraph input '{}' is {}, the subgraph declares {}", v.name,
                              dtype_name(inputs[i].dtype), type_name(*v.type));
    }
    env.bind(g.inputs[i], inputs[i]);
  }
  for (size_t i = 0; i < captures.size(); ++i) env.bind(g.captures[i], captures[i]);
  return Status::Ok();
}

namespace {

// Output o of g as a tensor view, checked against its declared type.
Result<View> output_view(const Graph& g, Env& env, int o) {
  const Value& val = g.values[o];
  if (env.objects[o]) {
    return invalid_argument("subgraph output '{}' is a {}, a tensor is expected", val.name,
                            type_name(type_of(*env.objects[o])));
  }
  MOSS_ASSIGN_OR_RETURN(View v, lookup(g, env, o));
  if (val.type && (!val.type->is_plain() || v.dtype != val.type->dtype)) {
    return invalid_argument("subgraph output '{}' is {}, the subgraph declares {}", val.name,
                            dtype_name(v.dtype), type_name(*val.type));
  }
  return v;
}

}  // namespace

Result<std::vector<Tensor>> Interpreter::run(const Graph& g, std::span<const View> inputs,
                                             std::span<const View> captures) {
  FrameLease frame(*this, g);
  Env& env = frame.get().env;
  MOSS_RETURN_IF_ERROR(bind_views(g, env, inputs, captures));
  MOSS_RETURN_IF_ERROR(run_all(g, env, &frame.get().infer));
  std::vector<Tensor> outs;
  outs.reserve(g.outputs.size());
  for (int o : g.outputs) {
    MOSS_ASSIGN_OR_RETURN(View v, output_view(g, env, o));
    MOSS_ASSIGN_OR_RETURN(Tensor t, tensor_of(v));
    outs.push_back(std::move(t));
  }
  return outs;
}

Status Interpreter::run_into(const Graph& g, std::span<const View> inputs,
                             std::span<const View> captures, std::span<const View> outputs) {
  if (outputs.size() != g.outputs.size()) {
    return internal_error("subgraph called with {} outputs, it has {}", outputs.size(), g.outputs.size());
  }
  FrameLease frame(*this, g);
  Env& env = frame.get().env;
  MOSS_RETURN_IF_ERROR(bind_views(g, env, inputs, captures));
  env.set_into(g, outputs);
  MOSS_RETURN_IF_ERROR(run_all(g, env, &frame.get().infer));
  for (size_t i = 0; i < outputs.size(); ++i) {
    const View& dst = outputs[i];
    MOSS_ASSIGN_OR_RETURN(View v, output_view(g, env, g.outputs[i]));
    if (v.data && v.data == dst.data) continue;  // written there
    if (v.dtype != dst.dtype || !std::ranges::equal(v.shape, dst.shape)) {
      return invalid_argument("subgraph output '{}' is {} {} where {} {} is expected",
                              g.values[g.outputs[i]].name, dtype_name(v.dtype),
                              shape_to_string(v.shape), dtype_name(dst.dtype),
                              shape_to_string(dst.shape));
    }
    const size_t bytes = static_cast<size_t>(v.numel) * dtype_size(v.dtype);
    if (bytes > 0) std::memmove(dst.data, v.data, bytes);
  }
  return Status::Ok();
}

Status Interpreter::run_objects(const Graph& g, std::span<const ObjectPtr> inputs,
                                std::span<const ObjectPtr> captures, std::vector<ObjectPtr>& outs,
                                std::span<const View> into) {
  MOSS_RETURN_IF_ERROR(check_call(g, inputs.size(), captures.size()));
  // What the caller kept from its last call goes first, so the wrappers and buffers are free.
  for (auto& o : outs) o.reset();
  outs.resize(g.outputs.size());
  FrameLease frame(*this, g);
  Env& env = frame.get().env;
  env.release_idle_wrappers();  // the caller has moved on from the last run's inputs
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Value& v = g.values[g.inputs[i]];
    if (v.type && !type_matches(*inputs[i], *v.type)) {
      return invalid_argument("subgraph input '{}' is a {}, the subgraph declares {}", v.name,
                              type_name(type_of(*inputs[i])), type_name(*v.type));
    }
    env.bind_object(g.inputs[i], inputs[i]);
  }
  for (size_t i = 0; i < captures.size(); ++i) env.bind_object(g.captures[i], captures[i]);
  env.set_into(g, into);
  MOSS_RETURN_IF_ERROR(run_all(g, env, &frame.get().infer));
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const int o = g.outputs[i];
    const Value& val = g.values[o];
    if (i < into.size() && into[i].data && env.set[o] && !env.owned[o] && !env.objects[o] &&
        env.views[o].data == into[i].data) {
      if (val.type && (!val.type->is_plain() || into[i].dtype != val.type->dtype)) {
        return invalid_argument("subgraph output '{}' is {}, the subgraph declares {}", val.name,
                                dtype_name(into[i].dtype), type_name(*val.type));
      }
      continue;  // written into its destination; outs[i] stays null
    }
    MOSS_ASSIGN_OR_RETURN(outs[i], object_of(g, env, o));
    if (val.type && !type_matches(*outs[i], *val.type)) {
      return invalid_argument("subgraph output '{}' is a {}, the subgraph declares {}", val.name,
                              type_name(type_of(*outs[i])), type_name(*val.type));
    }
  }
  return Status::Ok();
}

}  // namespace moss::engine
