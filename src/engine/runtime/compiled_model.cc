#include "engine/runtime/compiled_model.h"

#include "engine/kernels/compile_clock.h"
#include "engine/kernels/onednn_bridge.h"
#include "engine/kernels/registry.h"
#include "common/logging.h"
#include "engine/passes/passes.h"
#include "engine/quant/qdq_rewrite.h"

#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <utility>

namespace moss::engine {
namespace {

IoInfo io_info(const Value& v) {
  IoInfo io;
  io.name = v.name;
  if (v.type) {
    if (!v.type->is_plain()) io.object_type = *v.type;
    io.dtype = v.type->dtype;
    io.has_shape = v.type->has_shape;
    for (const Dim& d : v.type->dims) {
      io.dims.push_back(d.value);
      io.dim_params.push_back(d.param);
    }
  } else if (v.constant) {
    io.dtype = v.constant->dtype();
    io.has_shape = true;
    io.dims = v.constant_shape();
    io.dim_params.resize(io.dims.size());
  }
  return io;
}

// Every operator of g and of its subgraphs has a kernel (the error names the first that does not).
Status check_operators(const Graph& g) {
  for (const Node& node : g.nodes) {
    MOSS_RETURN_IF_ERROR(kernel_for(node).status());
    for (const auto& [name, a] : node.attrs) {
      if (a.kind != Attribute::Kind::kGraph) continue;
      Status s = check_operators(*a.g);
      if (!s.ok()) return s.with_context(fmt::format("{}: subgraph '{}'", node.label(), name));
    }
  }
  return Status::Ok();
}

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// The graph's inputs are typed, its I/O are tensors unless allowed, and every operator has a kernel.
Status check_graph(const Graph& g, const CompileOptions& options) {
  for (int in : g.inputs) {
    const Value& v = g.values[in];
    if (!v.type) return invalid_argument("input '{}' has no type", v.name);
  }
  if (!options.allow_non_tensor_io) {
    for (const auto& [ids, what] : {std::pair{&g.inputs, "input"}, std::pair{&g.outputs, "output"}}) {
      for (int id : *ids) {
        const Value& v = g.values[id];
        if (v.type && !v.type->is_plain()) {
          return unimplemented("model {} '{}' is a {}: model inputs and outputs must be tensors of "
                               "numbers (sequences, optionals and strings are supported inside "
                               "the model only)", what, v.name, type_name(*v.type));
        }
      }
    }
  }
  // Every operator must be known before any work is done, so the error names the first one.
  return check_operators(g);
}

// Constants a snapshot may store without bytes: packed (no step reads them), read by one node
// only, and handed to exactly one pack() unchanged (the whole tensor, its own bytes), so the
// packed copy is everything the plan derived from them (onednn_common.h, pack()). Small ones
// (biases, scales, scalars that fusion reads) keep their bytes: they cost nothing to store, and
// a decision taken on their values at plan time is then taken on the same values again.
constexpr size_t kMinBytesWithout = 4096;

std::set<const Tensor*> packed_unchanged(const Graph& g, const Plan& plan, const PackedWeights& packed) {
  std::map<const void*, std::pair<int, size_t>> sources;  // bytes -> (packs, bytes packed)
  for (const PackedWeights::Buffer& b : packed.buffers()) {
    if (!b.source) continue;
    auto& [count, size] = sources[b.source];
    ++count;
    size = b.source_size;
  }
  std::map<const Tensor*, int> readers;
  for (const Node& node : g.nodes) {
    for (int v : node.inputs) {
      if (v != kNoValue && g.values[v].constant) ++readers[g.values[v].constant.get()];
    }
  }
  std::set<const Tensor*> out;
  for (int v : plan.packed_constants) {
    const Tensor* c = g.values[v].constant.get();
    if (!c || c->nbytes() < kMinBytesWithout || readers[c] != 1) continue;
    auto it = sources.find(c->raw());
    if (it != sources.end() && it->second.first == 1 && it->second.second == c->nbytes()) out.insert(c);
  }
  return out;
}

// Whether a snapshot's stand-in (Value::stand_in) is still in the graph or its subgraphs after
// the plan: only its packed copy may be used, so one that a step or the tail would read refuses
// the rebuild.
bool holds_stand_in(const Graph& g) {
  for (const Value& v : g.values) {
    if (v.stand_in && v.constant) return true;
  }
  for (const Node& n : g.nodes) {
    for (const auto& [name, a] : n.attrs) {
      if (a.kind == Attribute::Kind::kGraph && a.g && holds_stand_in(*a.g)) return true;
    }
  }
  return false;
}

// How a model whose weights are held as `weights` computes them: bfloat16 convolutions only
// for a half model, when asked for, where the CPU runs them natively.
HalfCompute granted_half_compute(DType weights, const CompileOptions& options) {
  return weights != DType::kFloat32 && options.half_compute == HalfCompute::kBFloat16 &&
                 onednn::cpu_has_bf16()
             ? HalfCompute::kBFloat16
             : HalfCompute::kFloat32;
}

}  // namespace

Result<std::shared_ptr<const CompiledModel>> CompiledModel::compile(std::span<const uint8_t> bytes,
                                                                    const CompileOptions& options) {
  const auto t_start = Clock::now();
  std::shared_ptr<CompiledModel> m(new CompiledModel());
  MOSS_ASSIGN_OR_RETURN(m->graph_, load_onnx(bytes, options.limits));
  const auto t_parsed = Clock::now();
  Graph& g = m->graph_;
  MOSS_RETURN_IF_ERROR(check_graph(g, options));
  if (options.half_in_float32) {
    MOSS_ASSIGN_OR_RETURN(m->half_, compute_half_in_float32(g));
    if (m->half_.widened) {
      m->half_plan_.weights = m->half_.stored;
      m->half_plan_.compute = granted_half_compute(m->half_plan_.weights, options);
    }
  }
  // QDQ chains become QLinearConv before the weights' DequantizeLinear nodes are folded away.
  MOSS_RETURN_IF_ERROR(fold_constants(g, size_t{64} << 20, true));
  if (options.rewrite_qdq) {
    MOSS_ASSIGN_OR_RETURN(m->qdq_, rewrite_qdq(g));
  }
  MOSS_RETURN_IF_ERROR(fold_constants(g));
  MOSS_RETURN_IF_ERROR(fuse_group_norm(g));
  MOSS_RETURN_IF_ERROR(remove_dead_nodes(g));
  return finish(std::move(m), options, t_start, t_parsed, Clock::now());
}

Result<std::shared_ptr<const CompiledModel>> CompiledModel::compile_snapshot(
    const PlanSnapshot& snapshot, const CompileOptions& options) {
  const auto t_start = Clock::now();
  std::shared_ptr<CompiledModel> m(new CompiledModel());
  // The kernels pack by the half plan: one this CPU and these options would not grant packs
  // other buffers (bf16 or not) than the snapshot holds.
  m->half_plan_ = snapshot.half();
  if (m->half_plan_.compute != granted_half_compute(m->half_plan_.weights, options)) {
    return refuse(ErrorCode::kFailedPrecondition, kSnapshotHalfComputeDiffers,
                  "the plan snapshot's half compute is not the one this CPU and these options grant");
  }
  MOSS_ASSIGN_OR_RETURN(m->graph_, snapshot.graph());
  MOSS_RETURN_IF_ERROR(check_graph(m->graph_, options));
  const auto t_parsed = Clock::now();
  CompileOptions replay = options;
  replay.record_packed_weights = false;
  replay.packed_weights = snapshot.weights();
  MOSS_ASSIGN_OR_RETURN(auto compiled, finish(std::move(m), replay, t_start, t_parsed, t_parsed));
  if (!compiled->packed_only_ || !compiled->replayed_all_ || holds_stand_in(compiled->graph_)) {
    return refuse(ErrorCode::kFailedPrecondition, kSnapshotDoesNotReplay,
                  "the plan snapshot does not replay on this engine (a kernel packs other weights "
                  "than it recorded)");
  }
  return compiled;
}

Result<std::shared_ptr<const CompiledModel>> CompiledModel::finish(std::shared_ptr<CompiledModel> m,
                                                                   const CompileOptions& options,
                                                                   TimePoint t_start, TimePoint t_parsed,
                                                                   TimePoint t_passed) {
  Graph& g = m->graph_;
  for (const Node& node : g.nodes) {
    MOSS_ASSIGN_OR_RETURN(const OpKernel* k, kernel_for(node));
    m->kernels_.push_back(k);
  }
  std::set<const Tensor*> counted;
  for (const Value& v : g.values) {
    if (v.constant && counted.insert(v.constant.get()).second) m->weights_bytes_ += v.constant->nbytes();
  }
  for (int in : g.inputs) {
    m->inputs_.push_back(io_info(g.values[in]));
    bool bound = false;
    for (size_t n = 0; n < g.nodes.size(); ++n) {
      const Node& node = g.nodes[n];
      for (size_t i = 0; i < node.inputs.size() && i < 32; ++i) {
        bound |= node.inputs[i] == in && ((m->kernels_[n]->value_inputs >> i) & 1u);
      }
    }
    m->value_bound_.push_back(bound);
  }
  for (int out : g.outputs) m->outputs_.push_back(io_info(g.values[out]));
  m->max_cached_plans_ = options.max_cached_plans;
  m->threads_ = std::max(1, options.intra_op_threads);
  if (m->threads_ > 1 && std::getenv("OMP_WAIT_POLICY") == nullptr) {
    // libgomp reads it at load: spinning teams collapse when cores are shared (performance.md).
    static const bool warned = [] {
      log::get("engine")->warn(
          "intra_op_threads>1 without OMP_WAIT_POLICY=passive: OpenMP threads spin-wait and slow "
          "down sharply when the cores are shared; set it in the process environment");
      return true;
    }();
    (void)warned;
  }
  // With fully static inputs, plan now: shape and attribute errors surface at compile time.
  const CompileClock clock_before = compile_clock();
  Binding binding;
  bool all_static = true;
  for (size_t i = 0; i < m->inputs_.size(); ++i) {
    const IoInfo& io = m->inputs_[i];
    if (io.object_type) {  // bound in the plan's tail, not by shape (run_impl binds it as [])
      binding.shapes.emplace_back();
      continue;
    }
    all_static &= io.has_shape && !m->value_bound_[i];
    for (int64_t d : io.dims) all_static &= d >= 0;
    binding.shapes.push_back(io.dims);
  }
  if (all_static && m->max_cached_plans_ > 0 && !onednn_disabled()) {
    // The only plan this model can have, cached for good: weights its kernels packed are held
    // once (the originals are dropped from the plan and the graph).
    auto recorded = options.record_packed_weights ? std::make_shared<PackedWeights>() : nullptr;
    std::shared_ptr<const Plan> plan;
    {
      PackSession session(options.packed_weights.get(), recorded.get());
      MOSS_ASSIGN_OR_RETURN(plan, build_plan(g, m->kernels_, binding, m->threads_, true,
                                             m->half_plan_));
      m->replayed_all_ = session.replayed_all();
      if (session.taken() > 0) m->replayed_ = options.packed_weights;
    }
    if (recorded) {
      // Before the packed constants go: the snapshot keeps the others' bytes and their shapes.
      auto snapshot = PlanSnapshot::record(g, packed_unchanged(g, *plan, *recorded), recorded,
                                           m->half_plan_);
      if (snapshot.ok()) {
        m->snapshot_ = std::move(snapshot).value();
      } else {
        // Code and reason only: a worker's log must not show the model's internals.
        log::get("engine")->info("no plan snapshot: code={} reason={}",
                                 error_code_name(snapshot.status().code()),
                                 snapshot.status().reason().empty() ? "-" : snapshot.status().reason());
      }
    }
    m->recorded_ = std::move(recorded);
    for (int v : plan->packed_constants) g.values[v].constant.reset();
    m->plans_.emplace(plan->key, plan);
    m->packed_only_ = true;
  } else if (all_static) {
    MOSS_RETURN_IF_ERROR(m->plan_for(binding).status());
  }
  const auto t_planned = Clock::now();
  const CompileClock& clock_after = compile_clock();
  const double kernel_ms = static_cast<double>(clock_after.kernel_ns - clock_before.kernel_ns) / 1e6;
  m->timing_.parse_ms = ms_between(t_start, t_parsed);
  m->timing_.passes_ms = ms_between(t_parsed, t_passed);
  m->timing_.pack_ms = static_cast<double>(clock_after.pack_ns - clock_before.pack_ns) / 1e6;
  m->timing_.kernels_ms = kernel_ms - m->timing_.pack_ms;
  m->timing_.plan_ms = ms_between(t_passed, t_planned) - kernel_ms;
  m->timing_.total_ms = ms_between(t_start, t_planned);
  m->weights_bytes_ = 0;
  counted.clear();
  for (const Value& v : g.values) {
    if (v.constant && counted.insert(v.constant.get()).second) m->weights_bytes_ += v.constant->nbytes();
  }
  return std::shared_ptr<const CompiledModel>(std::move(m));
}

std::shared_ptr<const PlanSnapshot> CompiledModel::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

std::shared_ptr<const PlanSnapshot> CompiledModel::take_snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(snapshot_, nullptr);
}

size_t CompiledModel::weights_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = weights_bytes_;
  for (const auto& [key, plan] : plans_) n += plan->prepared_weights_bytes;
  return n;
}

Result<std::shared_ptr<const Plan>> CompiledModel::plan_for(const Binding& binding) const {
  const std::string key = binding.key();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second;
  }
  if (packed_only_) {
    // Static shapes: every valid binding has the compile-time plan's key (and the graph no longer
    // holds the packed weights, so it cannot be planned again).
    for (size_t i = 0; i < inputs_.size() && i < binding.shapes.size(); ++i) {
      if (binding.shapes[i] != inputs_[i].dims) {
        return invalid_argument("input '{}' has shape {}, the model expects {}", inputs_[i].name,
                                shape_to_string(binding.shapes[i]), shape_to_string(inputs_[i].dims));
      }
    }
    return invalid_argument("model has {} inputs, {} shapes given", inputs_.size(),
                            binding.shapes.size());
  }
  // Built outside the lock: two threads may race to build the same plan; both are identical.
  MOSS_ASSIGN_OR_RETURN(auto plan, build_plan(graph_, kernels_, binding, threads_, false,
                                              half_plan_));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  if (plans_.size() < max_cached_plans_) plans_.emplace(key, plan);
  return plan;
}

}  // namespace moss::engine
