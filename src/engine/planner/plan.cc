#include "engine/planner/plan.h"

#include <map>
#include <set>

#include "engine/kernels/compile_clock.h"
#include "engine/kernels/evaluate.h"
#include "engine/kernels/onednn_bridge.h"
#include "engine/kernels/registry.h"
#include "engine/planner/fusion.h"

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
    if (v.type && !v.type->is_plain()) continue;  // an Object, bound in the tail (object.h)
    ti.dtype = v.type ? v.type->dtype : DType::kFloat32;
    ti.shape = shapes[i];
    if (i < b.values.size() && b.values[i]) {
      if (b.values[i]->dtype() != ti.dtype || b.values[i]->shape() != ti.shape) {
        return internal_error("input '{}': bound value does not match its shape", v.name);
      }
      ti.value = b.values[i];
    }
    MOSS_RETURN_IF_ERROR(
        checked_numel(ti.shape, ti.dtype).status().with_context(fmt::format("input '{}'", v.name)));
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

// Orders the steps, fuses element-wise nodes into oneDNN kernels, keeps blocked layouts between
// consecutive oneDNN steps (chain mode) and inserts reorders where a reference kernel needs a
// plain copy. Then liveness and arena offsets (a fused residual's buffer is reused as the output
// when the residual dies there: oneDNN's sum post-op then accumulates in place).
class Scheduler {
 public:
  Scheduler(const Graph& g, const std::vector<const OpKernel*>& kernels, int threads,
            const std::vector<int>& outputs, Plan& p)
      : g_(g),
        outputs_(outputs),
        kernels_(kernels),
        threads_(threads),
        p_(p),
        dnnl_(!onednn_disabled()),
        layout_(g.values.size()),
        is_output_(g.values.size(), false),
        uses_(g.values.size()),
        absorbed_by_(g.nodes.size(), -1),
        fusion_of_(g.nodes.size(), -1) {
    for (int v : outputs_) is_output_[v] = true;
    // plain_of appends at most one plain copy per value: with this capacity p_.info never moves,
    // so the TensorInfo pointers a step request holds stay valid across plain_of calls.
    p_.info.reserve(2 * p_.info.size());
  }

  Status run(const std::vector<int>& live) {
    for (int n : live) {
      for (int v : g_.nodes[n].inputs) {
        if (v != kNoValue) uses_[v].push_back(n);
      }
    }
    if (dnnl_) fusions_ = find_fusions(g_, p_.info, live, outputs_);
    // A fused step runs where its last absorbed node was: the residual is ready by then.
    std::map<int, int> fused_at;  // node index of last absorbed -> fusion
    for (size_t i = 0; i < fusions_.size(); ++i) {
      fusion_of_[fusions_[i].anchor] = static_cast<int>(i);
      for (int a : fusions_[i].absorbed) absorbed_by_[a] = static_cast<int>(i);
      fused_at[fusions_[i].absorbed.back()] = static_cast<int>(i);
    }
    for (int n : live) {
      if (fusion_of_[n] >= 0) continue;  // runs at its last absorbed node
      auto it = fused_at.find(n);
      if (it != fused_at.end()) {
        MOSS_RETURN_IF_ERROR(unit(fusions_[it->second].anchor, &fusions_[it->second]));
      } else if (absorbed_by_[n] < 0) {
        MOSS_RETURN_IF_ERROR(unit(n, nullptr));
      }
    }
    return Status::Ok();
  }

  Status assign_arena() {
    const size_t nv = p_.info.size();
    p_.offset.assign(nv, -1);
    view_alias_.resize(nv, -1);
    std::vector<int> alias = view_alias_;  // value -> value whose buffer it uses
    auto root = [&](int v) {
      while (alias[v] >= 0) v = alias[v];
      return v;
    };
    auto bytes_of = [&](int v) -> size_t {
      if (!layout_[v].is_empty()) return layout_[v].bytes();
      return static_cast<size_t>(p_.info[v].numel()) * dtype_size(p_.info[v].dtype);
    };
    // Liveness of buffers over steps: graph inputs are born before step 0, graph outputs live to
    // the end; a view (Reshape, ...) keeps its source's buffer alive.
    const int64_t end = static_cast<int64_t>(p_.steps.size());
    std::vector<int64_t> first(nv, -2), last(nv, -2);
    for (int in : g_.inputs) {
      if (!p_.info[in].value) first[in] = last[in] = -1;
    }
    auto read = [&](int v, int64_t s) {
      if (v == kNoValue || p_.info[v].value) return;
      const int r = root(v);
      if (first[r] != -2) last[r] = std::max(last[r], s);
    };
    for (int64_t s = 0; s < end; ++s) {
      for (int in : p_.step_inputs[s]) read(in, s);
      for (int o : p_.step_outputs[s]) {
        if (o != kNoValue && !p_.info[o].value) first[o] = last[o] = s;
      }
      // The residual buffer becomes the fused step's output when this step reads it last.
      auto it = residual_at_.find(s);
      if (it == residual_at_.end()) continue;
      const int out = p_.step_outputs[s][0], r = root(it->second);
      // Not when the step also reads the residual as an operand (y = Conv(x) + x).
      bool read_later = is_output_[it->second];
      const auto& ins = p_.step_inputs[s];
      for (size_t i = 0; i + 1 < ins.size(); ++i) {
        read_later |= ins[i] != kNoValue && !p_.info[ins[i]].value && root(ins[i]) == r;
      }
      for (int o : outputs_) read_later |= root(o) == r;
      for (int64_t t = s + 1; t < end && !read_later; ++t) {
        for (int in : p_.step_inputs[t])
          read_later |= in != kNoValue && !p_.info[in].value && root(in) == r;
      }
      if (!read_later && first[r] >= 0 && bytes_of(r) == bytes_of(out)) {
        alias[out] = r;
        first[out] = -2;
      }
    }
    for (int o : outputs_) read(o, end);
    std::vector<Interval> items;
    std::vector<int> ids;
    for (size_t v = 0; v < nv; ++v) {
      if (first[v] == -2 || p_.info[v].value || alias[v] >= 0) continue;
      const size_t bytes = bytes_of(static_cast<int>(v));
      items.push_back(Interval{first[v], last[v], bytes});
      ids.push_back(static_cast<int>(v));
      p_.unshared_bytes += (bytes + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
    }
    auto offsets = assign_offsets(items, p_.arena_bytes);
    for (size_t i = 0; i < ids.size(); ++i) p_.offset[ids[i]] = offsets[i];
    for (size_t v = 0; v < nv; ++v) {
      if (alias[v] >= 0 && !p_.info[v].value) p_.offset[v] = p_.offset[root(static_cast<int>(v))];
    }
    return Status::Ok();
  }

 private:
  void emit(int node, std::shared_ptr<const PreparedKernel> k, std::vector<int> in,
            std::vector<int> out, std::string label) {
    if (k) {
      p_.scratch_bytes = std::max(p_.scratch_bytes, k->scratch_bytes());
      p_.prepared_weights_bytes += k->weights_bytes();
    }
    p_.steps.push_back(node);
    p_.kernels.push_back(kernels_[node]);
    p_.prepared.push_back(std::move(k));
    p_.step_inputs.push_back(std::move(in));
    p_.step_outputs.push_back(std::move(out));
    p_.step_labels.push_back(std::move(label));
  }

  static OnednnStep timed_prepare(const OnednnStepRequest& r) {
    ClockScope timed(compile_clock().kernel_ns);
    return prepare_onednn_step(r);
  }

  // A plain copy of v (v itself when it is plain), made by a reorder step before `node`.
  Result<int> plain_of(int v, int node) {
    if (layout_[v].is_empty()) return v;
    auto it = plain_copy_.find(v);
    if (it != plain_copy_.end()) return it->second;
    const onednn::Layout plain = layout_[v].plain_same_type();  // f32, or int8 for int8 steps
    std::shared_ptr<const PreparedKernel> k;
    {
      ClockScope timed(compile_clock().kernel_ns);
      k = onednn_reorder_step(layout_[v], plain, threads_);
    }
    if (!k)
      return internal_error("{}: no reorder from {}", g_.nodes[node].label(),
                            layout_[v].to_string());
    const int t = static_cast<int>(p_.info.size());
    p_.info.push_back(TensorInfo{p_.info[v].dtype, p_.info[v].shape, nullptr});
    layout_.emplace_back();
    is_output_.push_back(false);
    plain_copy_[v] = t;
    emit(node, std::move(k), {v}, {t}, "Reorder");
    return t;
  }

  // Every reader of v takes a blocked layout (a Conv/pool input 0, or a fused Conv residual).
  bool blocked_ok(int v) const {
    if (is_output_[v] || uses_[v].empty()) return false;
    for (int c : uses_[v]) {
      const Node& n = g_.nodes[c];
      if (absorbed_by_[c] >= 0) {
        const Fusion& f = fusions_[absorbed_by_[c]];
        const std::string& anchor = g_.nodes[f.anchor].op_type;
        if (f.residual != v || (anchor != "Conv" && anchor != "QLinearConv")) return false;
        continue;
      }
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        if (n.inputs[i] == v && !onednn_takes_blocked_input(n, i)) return false;
      }
    }
    return true;
  }

  // Reshape and friends on a plain, non-constant tensor: the output views the input's buffer.
  bool view(const Node& node) {
    static const std::set<std::string> kViews{"Reshape", "Flatten", "Squeeze", "Unsqueeze",
                                              "Identity"};
    if (!kViews.count(node.op_type) || node.inputs.empty() || node.outputs.size() != 1)
      return false;
    const int in = node.inputs[0], out = node.outputs[0];
    if (in == kNoValue || out == kNoValue || p_.info[in].value || !layout_[in].is_empty())
      return false;
    if (p_.info[in].dtype != p_.info[out].dtype || p_.info[in].numel() != p_.info[out].numel()) {
      return false;
    }
    view_alias_.resize(p_.info.size(), -1);
    view_alias_[out] = in;
    return true;
  }

  // A fused attention block on plain inputs {Q, K, V, mask}; its nodes one by one when oneDNN
  // declines it.
  Status attention_unit(int n, const Fusion& f) {
    const Node& node = g_.nodes[n];
    const AttentionFusion& a = *f.attention;
    std::vector<int> in = {node.inputs[0], node.inputs[1], a.v};
    if (a.mask != kNoValue) in.push_back(a.mask);
    for (int& v : in) {
      MOSS_ASSIGN_OR_RETURN(v, plain_of(v, n));
    }
    const TensorInfo* operands[] = {&p_.info[in[0]], &p_.info[in[1]]};
    std::vector<TensorInfo> outs{p_.info[f.output]};
    OnednnStepRequest r;
    r.node = &node;
    r.in = operands;
    r.out = &outs;
    r.threads = threads_;
    AttentionStepRequest ar;
    ar.v = &p_.info[a.v];
    ar.mask = a.mask == kNoValue ? nullptr : &p_.info[a.mask];
    ar.scale = a.scale;
    ar.mask_is_condition = a.mask_is_condition;
    ar.masked_when = a.masked_when;
    std::shared_ptr<const PreparedKernel> k;
    {
      ClockScope timed(compile_clock().kernel_ns);
      k = prepare_attention_step(r, ar).kernel;
    }
    if (!k) {
      MOSS_RETURN_IF_ERROR(unit(n, nullptr));
      for (int x : f.absorbed) MOSS_RETURN_IF_ERROR(unit(x, nullptr));
      return Status::Ok();
    }
    p_.fused_nodes += f.absorbed.size();
    emit(n, std::move(k), std::move(in), {f.output}, f.label);
    return Status::Ok();
  }

  Status unit(int n, const Fusion* f) {
    if (f && f->attention) return attention_unit(n, *f);
    const Node& node = g_.nodes[n];
    if (!f && view(node)) return Status::Ok();
    std::vector<int> in = node.inputs, out = node.outputs;
    if (f) {
      out[0] = f->output;
      if (f->residual != kNoValue) in.push_back(f->residual);
    }
    std::shared_ptr<const PreparedKernel> k;
    onednn::Layout dst;
    if (dnnl_ && onednn_serves(node.op_type)) {
      std::vector<const TensorInfo*> infos(node.inputs.size(), nullptr);
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        if (node.inputs[i] != kNoValue) infos[i] = &p_.info[node.inputs[i]];
      }
      std::vector<TensorInfo> outs;
      for (int o : out) outs.push_back(o == kNoValue ? TensorInfo{} : p_.info[o]);
      OnednnStepRequest r;
      r.node = &node;
      r.in = infos;
      r.out = &outs;
      r.threads = threads_;
      r.half = p_.half;
      if (f) {
        r.post_ops = f->post_ops;
        if (f->bias != kNoValue) r.bias = &p_.info[f->bias];
        if (f->batch_norm >= 0) {
          const Node& bn = g_.nodes[f->batch_norm];
          for (size_t i = 1; i < 5; ++i) r.batch_norm.push_back(&p_.info[bn.inputs[i]]);
          r.batch_norm_epsilon = bn.attr_float("epsilon", 1e-5f);
        }
        if (f->residual != kNoValue) {
          r.residual = &p_.info[f->residual];
          r.residual_layout = layout_[f->residual];
        }
        if (f->quantized_add >= 0) {
          r.quantized_add = &g_.nodes[f->quantized_add];
          for (int v : r.quantized_add->inputs) {
            r.quantized_add_in.push_back(v == kNoValue ? nullptr : &p_.info[v]);
          }
        }
      }
      r.src_layout = in[0] == kNoValue ? onednn::Layout() : layout_[in[0]];
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        r.in_layouts.push_back(in[i] == kNoValue ? onednn::Layout() : layout_[in[i]]);
      }
      r.dst_blocked_ok = blocked_ok(out[0]);
      if (!r.dst_blocked_ok && !r.residual_layout.is_empty()) {
        // A blocked residual would make the output blocked too; readers need it plain.
        MOSS_ASSIGN_OR_RETURN(in.back(), plain_of(in.back(), n));
        r.residual_layout = onednn::Layout();
      }
      OnednnStep step = timed_prepare(r);
      if (!step.kernel && (!r.src_layout.is_empty() || !r.residual_layout.is_empty())) {
        for (int& v : in) {
          if (v == kNoValue) continue;
          MOSS_ASSIGN_OR_RETURN(v, plain_of(v, n));
        }
        r.src_layout = r.residual_layout = onednn::Layout();
        r.in_layouts.assign(r.in_layouts.size(), onednn::Layout());
        step = timed_prepare(r);
      }
      k = std::move(step.kernel);
      dst = std::move(step.dst_layout);
    }
    const PrepareFn prepare = kernels_[n]->prepare;
    if (!k && !f && dnnl_ && prepare && !onednn_serves(node.op_type)) {
      // Kernels outside the bridge (quant/: int8 QLinearConv, MatMulInteger) on plain inputs.
      for (int& v : in) {
        if (v == kNoValue) continue;
        MOSS_ASSIGN_OR_RETURN(v, plain_of(v, n));
      }
      std::vector<const TensorInfo*> infos(in.size(), nullptr);
      for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] != kNoValue) infos[i] = &p_.info[in[i]];
      }
      std::vector<TensorInfo> outs;
      for (int o : out) outs.push_back(o == kNoValue ? TensorInfo{} : p_.info[o]);
      {
        ClockScope timed(compile_clock().kernel_ns);
        k = prepare(node, infos, outs, threads_);
      }
      if (k) {
        std::string label(k->kind());
        emit(n, std::move(k), std::move(in), std::move(out), std::move(label));
        return Status::Ok();
      }
    }
    if (!k && f) {
      // oneDNN declined the fused form: run the nodes one by one, here (all inputs are ready).
      MOSS_RETURN_IF_ERROR(unit(n, nullptr));
      for (int a : f->absorbed) MOSS_RETURN_IF_ERROR(unit(a, nullptr));
      return Status::Ok();
    }
    if (!k) {
      for (int& v : in) {
        if (v == kNoValue) continue;
        MOSS_ASSIGN_OR_RETURN(v, plain_of(v, n));
      }
    }
    if (f) {
      p_.fused_nodes += f->absorbed.size();
      if (f->residual != kNoValue) residual_at_[static_cast<int64_t>(p_.steps.size())] = in.back();
    }
    if (!dst.is_empty()) {
      layout_[out[0]] = dst;
      ++p_.blocked_values;
    }
    std::string label = f ? f->label : std::string(k ? k->kind() : std::string_view());
    emit(n, std::move(k), std::move(in), std::move(out), std::move(label));
    return Status::Ok();
  }

  const Graph& g_;
  const std::vector<int>& outputs_;  // graph outputs and values the tail reads
  const std::vector<const OpKernel*>& kernels_;
  const int threads_;
  Plan& p_;
  const bool dnnl_;
  std::vector<onednn::Layout> layout_;  // per value; empty = plain
  std::vector<bool> is_output_;
  std::vector<std::vector<int>> uses_;        // per value: running nodes that read it
  std::vector<int> absorbed_by_, fusion_of_;  // per node: fusion index or -1
  std::vector<Fusion> fusions_;
  std::map<int, int> plain_copy_;       // blocked value -> its plain temporary
  std::map<int64_t, int> residual_at_;  // step -> residual value it adds
  std::vector<int> view_alias_;         // per value: the value whose buffer it views, or -1
};

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
                                               const Binding& binding, int threads,
                                               bool release_packed, const HalfPlan& half) {
  auto plan = std::make_shared<Plan>();
  Plan& p = *plan;
  p.key = binding.key();
  p.half = half;
  p.info.resize(g.values.size());
  for (size_t v = 0; v < g.values.size(); ++v) {
    const Value& val = g.values[v];
    if (val.constant) p.info[v] = TensorInfo{val.constant->dtype(), val.constant_shape(), val.constant};
  }
  MOSS_RETURN_IF_ERROR(bind_inputs(g, binding, p));
  std::vector<int> live;  // nodes left to run after folding, in order
  std::vector<bool> unknown(g.values.size(), false);  // produced by the tail
  for (int v : g.inputs) unknown[v] = g.values[v].type && !g.values[v].type->is_plain();

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
    // A node joins the tail (run by the interpreter after the static steps) when its kernel's
    // outputs depend on data, when it reads a tail value, or when a shape-determining input is
    // computed at run time (Reshape of a computed shape, ...).
    bool reads_tail = false;
    for (int v : node.inputs) reads_tail |= v != kNoValue && unknown[v];
    // Sequences, optionals and strings (object.h) exist only in the tail.
    const OpKernel* objects = object_kernel_for(node, k, false);
    bool dynamic = k.run_dynamic != nullptr || objects || reads_tail;
    std::vector<TensorInfo> out;
    // With every input known, infer() checks attributes here (errors at compile time).
    const Status inferred = reads_tail ? Status::Ok() : (objects ? *objects : k).infer(node, in, out);
    if (!inferred.ok()) {
      bool computed = false;
      for (size_t i = 0; i < in.size() && i < 32; ++i) {
        computed |= in[i] && !in[i]->value && ((k.value_inputs >> i) & 1u);
      }
      if (k.run_dynamic || objects || !computed) return inferred;
      dynamic = true;
    }
    if (dynamic) {
      p.tail.push_back(static_cast<int>(n));
      for (size_t i = 0; i < node.outputs.size(); ++i) {
        const int o = node.outputs[i];
        if (o == kNoValue) continue;
        unknown[o] = true;
        p.info[o] = TensorInfo{};
        if (inferred.ok() && i < out.size()) p.info[o].dtype = out[i].dtype;
      }
      continue;
    }
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
    if (known && !has_values && bytes <= (size_t{16} << 20) && foldable(k, node)) {
      MOSS_ASSIGN_OR_RETURN(auto values, evaluate_node(node, k, in, out));
      for (size_t i = 0; i < out.size(); ++i) out[i].value = values[i];
    }
    bool folded = true;
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (node.outputs[i] != kNoValue) folded &= out[i].value != nullptr;
    }
    if (!folded) live.push_back(static_cast<int>(n));
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (node.outputs[i] != kNoValue) p.info[node.outputs[i]] = std::move(out[i]);
    }
  }
  // Values the tail reads from the static part stay alive (and plain) to the end of the steps.
  std::vector<bool> pinned(g.values.size(), false);
  for (int n : p.tail) {
    for (int v : g.nodes[n].inputs) {
      if (v != kNoValue && !unknown[v] && !pinned[v]) {
        pinned[v] = true;
        p.tail_reads.push_back(v);
      }
    }
  }
  std::vector<int> kept_outputs = g.outputs;
  for (int v : p.tail_reads) kept_outputs.push_back(v);
  Scheduler scheduler(g, kernels, threads, kept_outputs, p);
  MOSS_RETURN_IF_ERROR(scheduler.run(live));
  MOSS_RETURN_IF_ERROR(scheduler.assign_arena());
  // Constants that no step reads at run time.
  std::vector<bool> read(p.info.size(), false);
  for (int o : g.outputs) read[o] = true;
  for (int v : p.tail_reads) read[v] = true;
  for (size_t s = 0; s < p.steps.size(); ++s) {
    const uint32_t packed = p.prepared[s] ? p.prepared[s]->packed_inputs() : 0;
    for (size_t i = 0; i < p.step_inputs[s].size(); ++i) {
      const int v = p.step_inputs[s][i];
      if (v != kNoValue && !(i < 32 && ((packed >> i) & 1u))) read[v] = true;
    }
  }
  for (size_t v = 0; v < g.values.size(); ++v) {
    if (g.values[v].constant && !read[v]) {
      p.packed_constants.push_back(static_cast<int>(v));
      if (release_packed) p.info[v].value.reset();
    }
  }
  return std::shared_ptr<const Plan>(std::move(plan));
}

}  // namespace moss::engine
