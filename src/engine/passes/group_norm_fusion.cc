// Rewrites torch's GroupNorm export (opset <= 17, before GroupNormalization existed) into one
// com.microsoft GroupNorm node (kernels/group_norm.h):
//   Reshape(X, [0, G, -1]) -> InstanceNormalization(scale 1, bias 0) -> Reshape(., Shape(X))
//   -> Mul(gamma [C, 1, ...]) -> Add(beta, same shape) [-> Sigmoid, Mul: SiLU]
// = GroupNorm(X, gamma, beta, groups G, activation 0/1, channels_last 0). Every intermediate
// must be read by the next node only (not a graph output). X's rank is unknown here, so gamma
// and beta keep their exported shape; the kernel's infer() accepts it only at rank(X) - 1, where
// it is per channel, and refuses the node otherwise (an export whose gamma would broadcast along
// another axis fails at compile, never computes something else).
#include "engine/passes/passes.h"

#include <algorithm>

namespace moss::engine {
namespace {

bool is_op(const Node& n, const char* op) { return n.op_type == op && n.domain.empty(); }

bool all_equal(const Tensor& t, float v) {
  if (t.dtype() != DType::kFloat32) return false;
  const float* p = t.data<float>();
  return std::all_of(p, p + t.numel(), [&](float x) { return x == v; });
}

class Matcher {
 public:
  explicit Matcher(Graph& g) : g_(g), consumers_(g.values.size()) {
    for (size_t n = 0; n < g.nodes.size(); ++n) {
      for (int in : g.nodes[n].inputs) {
        if (in != kNoValue) consumers_[in].push_back(static_cast<int>(n));
      }
    }
    outputs_.assign(g.values.size(), false);
    for (int o : g.outputs) outputs_[o] = true;
  }

  // The one node reading v, or -1 when v has other readers or is a graph output.
  int only_consumer(int v) const {
    if (v == kNoValue || outputs_[v] || consumers_[v].size() != 1) return -1;
    return consumers_[v][0];
  }
  const Tensor* constant(int v) const { return v == kNoValue ? nullptr : g_.values[v].constant.get(); }
  int producer(int v) const { return v == kNoValue ? -1 : g_.values[v].producer; }
  // The operand of binary node n that is not v, when it is a float constant.
  int other_constant(const Node& n, int v) const {
    if (n.inputs.size() != 2) return kNoValue;
    const int o = n.inputs[0] == v ? n.inputs[1] : n.inputs[1] == v ? n.inputs[0] : kNoValue;
    const Tensor* t = constant(o);
    return t && t->dtype() == DType::kFloat32 ? o : kNoValue;
  }

  // Fills `fused` (the replacement node) and `gone` (nodes it replaces, besides instance_norm).
  bool match(int instance_norm, Node& fused, std::vector<int>& gone) const {
    const Node& in = g_.nodes[instance_norm];
    if (in.inputs.size() != 3 || in.outputs.size() != 1) return false;
    const int r1 = producer(in.inputs[0]);
    if (r1 < 0 || only_consumer(in.inputs[0]) != instance_norm) return false;
    const Node& reshape1 = g_.nodes[r1];
    if (!is_op(reshape1, "Reshape") || reshape1.inputs.size() != 2 ||
        reshape1.attr_int("allowzero", 0) != 0) {
      return false;
    }
    const int x = reshape1.inputs[0];
    const Tensor* shape = constant(reshape1.inputs[1]);
    if (!shape || shape->dtype() != DType::kInt64 || shape->numel() != 3) return false;
    const int64_t* s = shape->data<int64_t>();
    const int64_t groups = s[1];
    if (s[0] != 0 || groups < 1 || s[2] != -1) return false;
    const Tensor *scale = constant(in.inputs[1]), *bias = constant(in.inputs[2]);
    if (!scale || !bias || scale->numel() != groups || bias->numel() != groups ||
        !all_equal(*scale, 1.f) || !all_equal(*bias, 0.f)) {
      return false;
    }
    const int r2 = only_consumer(in.outputs[0]);
    if (r2 < 0) return false;
    const Node& reshape2 = g_.nodes[r2];
    if (!is_op(reshape2, "Reshape") || reshape2.inputs.size() != 2 || reshape2.inputs[0] != in.outputs[0]) {
      return false;
    }
    const int sh = producer(reshape2.inputs[1]);
    if (sh < 0) return false;
    const Node& shape_of = g_.nodes[sh];
    if (!is_op(shape_of, "Shape") || shape_of.inputs.size() != 1 || shape_of.inputs[0] != x ||
        shape_of.attr("start") || shape_of.attr("end")) {
      return false;
    }
    const int m = only_consumer(reshape2.outputs[0]);
    if (m < 0 || !is_op(g_.nodes[m], "Mul")) return false;
    const int gamma = other_constant(g_.nodes[m], reshape2.outputs[0]);
    const int a = only_consumer(g_.nodes[m].outputs[0]);
    if (gamma == kNoValue || a < 0 || !is_op(g_.nodes[a], "Add")) return false;
    const int beta = other_constant(g_.nodes[a], g_.nodes[m].outputs[0]);
    if (beta == kNoValue) return false;
    // Per channel: [C, 1, ...] of rank 2 or more (a rank-1 gamma would scale the last axis).
    const auto& gs = constant(gamma)->shape();
    if (gs.size() < 2 || constant(beta)->shape() != gs || gs[0] % groups != 0) return false;
    for (size_t d = 1; d < gs.size(); ++d) {
      if (gs[d] != 1) return false;
    }
    gone = {r1, r2, m, a};
    int out = g_.nodes[a].outputs[0];
    int64_t activation = 0;
    // SiLU: Sigmoid(y) and Mul(y, Sigmoid(y)) are y's only readers.
    const auto& readers = consumers_[out];
    if (!outputs_[out] && readers.size() == 2) {
      int sig = readers[0], mul = readers[1];
      if (!is_op(g_.nodes[sig], "Sigmoid")) std::swap(sig, mul);
      const Node &sn = g_.nodes[sig], &mn = g_.nodes[mul];
      if (is_op(sn, "Sigmoid") && is_op(mn, "Mul") && mn.inputs.size() == 2 &&
          only_consumer(sn.outputs[0]) == mul &&
          ((mn.inputs[0] == out && mn.inputs[1] == sn.outputs[0]) ||
           (mn.inputs[1] == out && mn.inputs[0] == sn.outputs[0]))) {
        gone.push_back(sig);
        gone.push_back(mul);
        out = mn.outputs[0];
        activation = 1;
      }
    }
    fused = Node{};
    fused.name = in.name;
    fused.op_type = "GroupNorm";
    fused.domain = "com.microsoft";
    fused.opset = 1;
    fused.inputs = {x, gamma, beta};
    fused.outputs = {out};
    auto set_int = [&](const char* k, int64_t v) {
      Attribute at;
      at.kind = Attribute::Kind::kInt;
      at.i = v;
      fused.attrs[k] = at;
    };
    Attribute eps;
    eps.kind = Attribute::Kind::kFloat;
    eps.f = in.attr_float("epsilon", 1e-5f);
    fused.attrs["epsilon"] = eps;
    set_int("groups", groups);
    set_int("activation", activation);
    set_int("channels_last", 0);
    return true;
  }

 private:
  Graph& g_;
  std::vector<std::vector<int>> consumers_;
  std::vector<bool> outputs_;
};

}  // namespace

Status fuse_group_norm(Graph& g) {
  g.index_producers();
  std::vector<bool> erase(g.nodes.size(), false);
  bool changed = false;
  {
    const Matcher matcher(g);
    for (size_t n = 0; n < g.nodes.size(); ++n) {
      if (erase[n] || !is_op(g.nodes[n], "InstanceNormalization")) continue;
      Node fused;
      std::vector<int> gone;
      if (!matcher.match(static_cast<int>(n), fused, gone)) continue;
      if (std::any_of(gone.begin(), gone.end(), [&](int i) { return erase[i]; })) continue;
      // The fused node takes the InstanceNormalization's place: X is computed before it and
      // every reader of the output after the last replaced node, which follows it.
      g.nodes[n] = std::move(fused);
      for (int i : gone) erase[i] = true;
      changed = true;
    }
  }
  if (!changed) return Status::Ok();
  std::vector<Node> kept;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    if (!erase[n]) kept.push_back(std::move(g.nodes[n]));
  }
  g.nodes = std::move(kept);
  g.index_producers();
  return Status::Ok();
}

}  // namespace moss::engine
