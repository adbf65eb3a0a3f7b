#include "engine/planner/fusion.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace moss::engine {
namespace {

using onednn::PostOp;

class Matcher {
 public:
  Matcher(const Graph& g, const std::vector<TensorInfo>& info, const std::vector<int>& live,
          const std::vector<int>& outputs)
      : g_(g), info_(info), uses_(g.values.size()), is_output_(g.values.size(), false) {
    for (int n : live) {
      for (int v : g.nodes[n].inputs) {
        if (v != kNoValue) uses_[v].push_back(n);
      }
    }
    for (int v : outputs) is_output_[v] = true;
  }

  // The single consumer of v that can absorb it, or -1.
  int sole_user(int v) const {
    if (is_output_[v] || uses_[v].size() != 1 || taken_.count(uses_[v][0])) return -1;
    return uses_[v][0];
  }

  // A float scalar constant (any rank, one element), or nullopt.
  std::optional<float> scalar(int v) const {
    if (v == kNoValue) return std::nullopt;
    const TensorInfo& t = info_[v];
    if (!t.value || t.dtype != DType::kFloat32 || t.numel() != 1) return std::nullopt;
    return t.value->data<float>()[0];
  }

  bool is_float_activation(int v) const {
    return v != kNoValue && !info_[v].value && info_[v].dtype == DType::kFloat32;
  }

  // Clip bounds (attributes before opset 11, optional scalar inputs after).
  bool clip_bounds(const Node& c, float& lo, float& hi) const {
    lo = std::numeric_limits<float>::lowest();
    hi = std::numeric_limits<float>::max();
    if (c.opset < 11) {
      lo = c.attr_float("min", lo);
      hi = c.attr_float("max", hi);
      return lo <= hi;
    }
    for (size_t i = 1; i < c.inputs.size(); ++i) {
      if (c.inputs[i] == kNoValue) continue;
      auto s = scalar(c.inputs[i]);
      if (!s) return false;
      (i == 1 ? lo : hi) = *s;
    }
    return lo <= hi;
  }

  // Inference-mode BatchNormalization whose scale, B, mean and var are float constants [M],
  // M the Conv's output channels.
  bool batch_norm_constants(const Node& bn, const Node& conv) const {
    if (bn.inputs.size() != 5 || bn.attr_int("training_mode", 0) != 0) return false;
    if (bn.opset < 9 && bn.attr_int("spatial", 1) != 1) return false;
    for (size_t i = 1; i < bn.outputs.size(); ++i) {
      if (bn.outputs[i] != kNoValue) return false;
    }
    if (conv.inputs.size() < 2 || conv.inputs[1] == kNoValue) return false;
    const auto& w = info_[conv.inputs[1]].shape;
    if (w.empty()) return false;
    for (size_t i = 1; i < 5; ++i) {
      const int v = bn.inputs[i];
      if (v == kNoValue || !info_[v].value || info_[v].dtype != DType::kFloat32 ||
          info_[v].numel() != w[0]) {
        return false;
      }
    }
    return true;
  }

  // The other input of a binary node whose inputs are {v, other}; kNoValue if v is not exactly
  // one of its two inputs.
  static int other_input(const Node& c, int v) {
    if (c.inputs.size() != 2) return kNoValue;
    if (c.inputs[0] == v && c.inputs[1] != v) return c.inputs[1];
    if (c.inputs[1] == v && c.inputs[0] != v) return c.inputs[0];
    return kNoValue;
  }

  // torch's Erf GELU starting at v (two users: Div and the Mul that closes the pattern).
  // Returns the nodes (Div, Erf, Add, Mul, Mul) or empty.
  std::vector<int> gelu(int v) const {
    if (is_output_[v] || uses_[v].size() != 2) return {};
    for (int order = 0; order < 2; ++order) {
      const int d = uses_[v][order], m1 = uses_[v][1 - order];
      const Node& div = g_.nodes[d];
      if (taken_.count(d) || taken_.count(m1)) continue;
      if (div.op_type != "Div" || div.inputs.size() != 2 || div.inputs[0] != v) continue;
      auto c = scalar(div.inputs[1]);
      if (!c || std::fabs(*c - 1.41421356f) > 1e-4f) continue;
      const int e = sole_user(div.outputs[0]);
      if (e < 0 || g_.nodes[e].op_type != "Erf") continue;
      const int a = sole_user(g_.nodes[e].outputs[0]);
      if (a < 0 || g_.nodes[a].op_type != "Add") continue;
      auto one = scalar(other_input(g_.nodes[a], g_.nodes[e].outputs[0]));
      if (!one || *one != 1.0f) continue;
      if (sole_user(g_.nodes[a].outputs[0]) != m1) continue;
      const Node& mul = g_.nodes[m1];
      if (mul.op_type != "Mul" || other_input(mul, v) != g_.nodes[a].outputs[0]) continue;
      const int m2 = sole_user(mul.outputs[0]);
      if (m2 < 0 || g_.nodes[m2].op_type != "Mul") continue;
      auto half = scalar(other_input(g_.nodes[m2], mul.outputs[0]));
      if (!half || *half != 0.5f) continue;
      return {d, e, a, m1, m2};
    }
    return {};
  }

  // A free user of v with this op and one output, or -1.
  int user_of(int v, const char* op) const {
    for (int u : uses_[v]) {
      if (!taken_.count(u) && g_.nodes[u].op_type == op && g_.nodes[u].outputs.size() == 1 &&
          g_.nodes[u].outputs[0] != kNoValue) {
        return u;
      }
    }
    return -1;
  }

  // A binary node whose inputs are {in, scalar constant c} with |c - want| <= tol.
  bool scaled_by(const Node& n, int in, float want, float tol) const {
    auto c = scalar(other_input(n, in));
    return c && std::fabs(*c - want) <= tol;
  }

  // The tanh GELU torch exports (nn.GELU(approximate="tanh"), GPT-2's gelu_new) starting at x:
  //   0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
  // with x^3 as Mul(x, Mul(x, x)) or Pow(x, 3), and 0.5 applied last or to x first. Returns the
  // nodes in graph order, or empty. Every user of x must be one of them.
  std::vector<int> gelu_tanh(int x) const {
    if (is_output_[x]) return {};
    std::vector<int> nodes;
    int cube = kNoValue;
    if (const int p = user_of(x, "Pow"); p >= 0 && g_.nodes[p].inputs[0] == x) {
      auto e = scalar(g_.nodes[p].inputs.size() == 2 ? g_.nodes[p].inputs[1] : kNoValue);
      if (e && *e == 3.0f) {
        cube = g_.nodes[p].outputs[0];
        nodes.push_back(p);
      }
    }
    if (cube == kNoValue) {
      int sq = -1;
      for (int u : uses_[x]) {
        const Node& n = g_.nodes[u];
        if (!taken_.count(u) && n.op_type == "Mul" && n.inputs.size() == 2 && n.inputs[0] == x &&
            n.inputs[1] == x) {
          sq = u;
        }
      }
      if (sq < 0) return {};
      const int c = sole_user(g_.nodes[sq].outputs[0]);
      if (c < 0 || g_.nodes[c].op_type != "Mul" ||
          other_input(g_.nodes[c], g_.nodes[sq].outputs[0]) != x) {
        return {};
      }
      cube = g_.nodes[c].outputs[0];
      nodes.insert(nodes.end(), {sq, c});
    }
    auto next = [&](int v, const char* op) {
      const int u = sole_user(v);
      return u >= 0 && g_.nodes[u].op_type == op && g_.nodes[u].outputs.size() == 1 ? u : -1;
    };
    const int t = next(cube, "Mul");
    if (t < 0 || !scaled_by(g_.nodes[t], cube, 0.044715f, 1e-6f)) return {};
    const int a = next(g_.nodes[t].outputs[0], "Add");
    if (a < 0 || other_input(g_.nodes[a], g_.nodes[t].outputs[0]) != x) return {};
    const int k = next(g_.nodes[a].outputs[0], "Mul");
    if (k < 0 || !scaled_by(g_.nodes[k], g_.nodes[a].outputs[0], 0.7978845608f, 1e-6f)) return {};
    const int th = next(g_.nodes[k].outputs[0], "Tanh");
    if (th < 0) return {};
    const int one = next(g_.nodes[th].outputs[0], "Add");
    if (one < 0 || !scaled_by(g_.nodes[one], g_.nodes[th].outputs[0], 1.0f, 0.0f)) return {};
    const int m = next(g_.nodes[one].outputs[0], "Mul");
    if (m < 0) return {};
    nodes.insert(nodes.end(), {t, a, k, th, one, m});
    const int h = other_input(g_.nodes[m], g_.nodes[one].outputs[0]);
    if (h == x) {  // (x * (1 + tanh)) * 0.5
      const int half = next(g_.nodes[m].outputs[0], "Mul");
      if (half < 0 || !scaled_by(g_.nodes[half], g_.nodes[m].outputs[0], 0.5f, 0.0f)) return {};
      nodes.push_back(half);
    } else {  // (0.5 * x) * (1 + tanh)
      int half = -1;
      for (int u : uses_[x]) {
        if (!taken_.count(u) && g_.nodes[u].outputs.size() == 1 && g_.nodes[u].outputs[0] == h) {
          half = u;
        }
      }
      if (half < 0 || g_.nodes[half].op_type != "Mul" || sole_user(h) != m ||
          !scaled_by(g_.nodes[half], x, 0.5f, 0.0f)) {
        return {};
      }
      nodes.push_back(half);
    }
    for (int u : uses_[x]) {
      if (std::find(nodes.begin(), nodes.end(), u) == nodes.end()) return {};
    }
    std::sort(nodes.begin(), nodes.end());
    return nodes;
  }

  // `from` broadcasts (numpy rules) to exactly `to`.
  static bool broadcasts(const Node& n, const std::vector<int64_t>& from,
                         const std::vector<int64_t>& to) {
    auto b = broadcast_shapes(n, from, to);
    return b.ok() && *b == to;
  }

  // The attention block starting at a MatMul of two computed operands (see AttentionFusion).
  std::optional<Fusion> attention(int anchor) {
    const Node& qk = g_.nodes[anchor];
    if (qk.inputs.size() != 2 || qk.outputs.size() != 1) return std::nullopt;
    if (!is_float_activation(qk.inputs[0]) || !is_float_activation(qk.inputs[1]) ||
        !is_float_activation(qk.outputs[0])) {
      return std::nullopt;
    }
    int cur = qk.outputs[0];
    const auto scores = info_[cur].shape;
    if (scores.size() < 2) return std::nullopt;
    AttentionFusion a;
    std::vector<int> nodes;
    auto step = [&]() -> const Node* {
      const int c = sole_user(cur);
      if (c < 0 || g_.nodes[c].outputs.size() != 1 || g_.nodes[c].outputs[0] == kNoValue ||
          info_[g_.nodes[c].outputs[0]].shape != scores) {
        return nullptr;
      }
      return &g_.nodes[c];
    };
    auto take = [&](const Node* n) {
      nodes.push_back(static_cast<int>(n - g_.nodes.data()));
      cur = n->outputs[0];
    };
    const Node* n = step();
    if (n && (n->op_type == "Mul" || n->op_type == "Div")) {
      const int other = other_input(*n, cur);
      auto s = scalar(other);
      if (s && !(n->op_type == "Div" && (n->inputs[1] != other || *s == 0.f))) {
        a.scale = n->op_type == "Mul" ? *s : 1.0f / *s;
        take(n);
        n = step();
      }
    }
    if (n && n->op_type == "Add") {
      const int other = other_input(*n, cur);
      if (other == kNoValue || info_[other].dtype != DType::kFloat32 ||
          !broadcasts(*n, info_[other].shape, scores)) {
        return std::nullopt;
      }
      a.mask = other;
      take(n);
      n = step();
    } else if (n && n->op_type == "Where" && n->inputs.size() == 3 && n->inputs[0] != cur &&
               (n->inputs[1] == cur) != (n->inputs[2] == cur)) {
      const int cond = n->inputs[0];
      auto fill = scalar(n->inputs[1] == cur ? n->inputs[2] : n->inputs[1]);
      if (!info_[cond].value || info_[cond].dtype != DType::kBool ||
          !broadcasts(*n, info_[cond].shape, scores) || !fill || !std::isinf(*fill) || *fill > 0) {
        return std::nullopt;
      }
      a.mask = cond;
      a.mask_is_condition = true;
      a.masked_when = n->inputs[2] == cur;  // Where(c, -inf, scores): -inf where c is true
      take(n);
      n = step();
    }
    if (!n || n->op_type != "Softmax") return std::nullopt;
    const int64_t rank = static_cast<int64_t>(scores.size());
    int64_t axis = n->attr_int("axis", n->opset < 13 ? 1 : -1);
    if (axis < 0) axis += rank;
    if (axis != rank - 1) return std::nullopt;  // (before opset 13 axis 1 of a 2-D is the same)
    take(n);
    // Dropout in inference (torchvision's Swin keeps it in the export) and Identity pass the
    // probabilities through.
    for (int c; (c = sole_user(cur)) >= 0;) {
      n = &g_.nodes[c];
      if (n->op_type != "Identity" && n->op_type != "Dropout") break;
      if (n->outputs.empty() || n->outputs[0] == kNoValue ||
          info_[n->outputs[0]].shape != scores) {
        return std::nullopt;
      }
      for (size_t i = 1; i < n->outputs.size(); ++i) {  // Dropout's mask, when nothing reads it
        const int o = n->outputs[i];
        if (o != kNoValue && (is_output_[o] || !uses_[o].empty())) return std::nullopt;
      }
      // An identity unless training_mode is set with a ratio above 0 (Swin's export: training
      // mode true, ratio 0).
      const int training = n->inputs.size() > 2 ? n->inputs[2] : kNoValue;
      const bool inference =
          training == kNoValue || (info_[training].value && info_[training].dtype == DType::kBool &&
                                   info_[training].numel() == 1 &&
                                   !info_[training].value->data<bool>()[0]);
      auto ratio = scalar(n->inputs.size() > 1 ? n->inputs[1] : kNoValue);
      if (!inference && !(ratio && *ratio == 0.f)) return std::nullopt;
      take(n);
    }
    const int pv = sole_user(cur);
    if (pv < 0) return std::nullopt;
    const Node& mm = g_.nodes[pv];
    if (mm.op_type != "MatMul" || mm.inputs.size() != 2 || mm.inputs[0] != cur ||
        mm.outputs.size() != 1 || !is_float_activation(mm.inputs[1]) ||
        !is_float_activation(mm.outputs[0])) {
      return std::nullopt;
    }
    a.v = mm.inputs[1];
    nodes.push_back(pv);
    Fusion f;
    f.anchor = anchor;
    f.absorbed = nodes;
    f.output = mm.outputs[0];
    f.label = "Attention";
    f.attention = a;
    taken_.insert(anchor);
    taken_.insert(nodes.begin(), nodes.end());
    return f;
  }

  // QLinearConv -> com.microsoft QLinearAdd(conv output, residual): one int8 convolution with a
  // sum post-op (quant/onednn_qconv.cc), the residual an int8 tensor of the output's shape.
  std::optional<Fusion> quantized_residual(int anchor) {
    const Node& an = g_.nodes[anchor];
    if (an.outputs.size() != 1 || an.outputs[0] == kNoValue) return std::nullopt;
    const int cur = an.outputs[0];
    const int c = sole_user(cur);
    if (c < 0) return std::nullopt;
    const Node& add = g_.nodes[c];
    if (add.op_type != "QLinearAdd" || add.domain != "com.microsoft" || add.inputs.size() < 7 ||
        add.outputs.size() != 1 || add.outputs[0] == kNoValue) {
      return std::nullopt;
    }
    int other = kNoValue;
    if (add.inputs[0] == cur && add.inputs[3] != cur) other = add.inputs[3];
    if (add.inputs[3] == cur && add.inputs[0] != cur) other = add.inputs[0];
    if (other == kNoValue || info_[other].value || info_[other].dtype != info_[cur].dtype ||
        info_[other].shape != info_[cur].shape || info_[add.outputs[0]].shape != info_[cur].shape) {
      return std::nullopt;
    }
    for (size_t i = 1; i < add.inputs.size(); ++i) {  // scales and zero points constant
      if (i != 3 && add.inputs[i] != kNoValue && !info_[add.inputs[i]].value) return std::nullopt;
    }
    Fusion f;
    f.anchor = anchor;
    f.absorbed = {c};
    f.post_ops = {{PostOp::Kind::kAddResidual}};
    f.residual = other;
    f.quantized_add = c;
    f.output = add.outputs[0];
    f.label = "QLinearAdd";
    taken_.insert(anchor);
    taken_.insert(c);
    return f;
  }

  std::optional<Fusion> match(int anchor) {
    const Node& an = g_.nodes[anchor];
    if (an.op_type == "MatMul") {
      if (auto f = attention(anchor)) return f;
    }
    if (an.op_type == "QLinearConv" && an.domain.empty()) return quantized_residual(anchor);
    const bool conv = an.op_type == "Conv";
    const bool matmul = an.op_type == "MatMul";
    // The int8 matmul of dynamic quantization takes post-ops like a float one (its bias is an
    // input already).
    const bool int8_matmul =
        (an.op_type == "DynamicQuantizeMatMul" || an.op_type == "MatMulIntegerToFloat") &&
        an.domain == "com.microsoft";
    if (!conv && !matmul && !int8_matmul && an.op_type != "Gemm") return std::nullopt;
    if (an.outputs.size() != 1 || !is_float_activation(an.outputs[0])) return std::nullopt;
    Fusion f;
    f.anchor = anchor;
    int cur = an.outputs[0];
    const auto& out_shape = info_[cur].shape;
    auto add = [&](std::vector<int> nodes, const char* label) {
      for (int n : nodes) {
        f.absorbed.push_back(n);
        taken_.insert(n);
      }
      cur = g_.nodes[nodes.back()].outputs[0];
      f.label += f.label.empty() ? label : std::string("+") + label;
    };
    for (;;) {
      if (auto nodes = gelu(cur); !nodes.empty()) {
        f.post_ops.push_back({PostOp::Kind::kGeluErf});
        add(nodes, "Gelu");
        continue;
      }
      if (auto nodes = gelu_tanh(cur); !nodes.empty()) {
        f.post_ops.push_back({PostOp::Kind::kGeluTanh});
        add(nodes, "GeluTanh");
        continue;
      }
      const int c = sole_user(cur);
      if (c < 0) break;
      const Node& n = g_.nodes[c];
      if (n.outputs.size() != 1 || n.outputs[0] == kNoValue) break;
      if (n.op_type == "BatchNormalization") {
        if (!conv || !f.post_ops.empty() || f.batch_norm >= 0 || !batch_norm_constants(n, an)) {
          break;
        }
        f.batch_norm = c;
        add({c}, "BatchNorm");
        continue;
      }
      if (n.op_type == "Relu") {
        f.post_ops.push_back({PostOp::Kind::kRelu});
      } else if (n.op_type == "Gelu" && n.inputs.size() == 1) {  // opset 20
        const std::string approx = n.attr_string("approximate", "none");
        if (approx != "none" && approx != "tanh") break;
        f.post_ops.push_back({approx == "tanh" ? PostOp::Kind::kGeluTanh : PostOp::Kind::kGeluErf});
      } else if (n.op_type == "LeakyRelu") {
        f.post_ops.push_back({PostOp::Kind::kLeakyRelu, n.attr_float("alpha", 0.01f)});
      } else if (n.op_type == "Sigmoid") {
        f.post_ops.push_back({PostOp::Kind::kSigmoid});
      } else if (n.op_type == "Tanh") {
        f.post_ops.push_back({PostOp::Kind::kTanh});
      } else if (n.op_type == "Clip") {
        float lo, hi;
        if (n.inputs.empty() || n.inputs[0] != cur || !clip_bounds(n, lo, hi)) break;
        f.post_ops.push_back({PostOp::Kind::kClip, lo, hi});
      } else if (n.op_type == "Mul" || n.op_type == "Div") {
        const int other = other_input(n, cur);
        auto s = scalar(other);
        if (!s || (n.op_type == "Div" && (n.inputs[1] != other || *s == 0.f))) break;
        f.post_ops.push_back({PostOp::Kind::kLinear, n.op_type == "Mul" ? *s : 1.0f / *s, 0.f});
      } else if (n.op_type == "Add") {
        const int other = other_input(n, cur);
        if (other == kNoValue || info_[other].dtype != DType::kFloat32) break;
        const TensorInfo& o = info_[other];
        if (o.value) {
          // A constant [N] (or [1,...,1,N]) after a MatMul is its bias.
          if (!matmul || !f.post_ops.empty() || f.bias != kNoValue || out_shape.empty() ||
              o.numel() != out_shape.back() || o.shape.empty() ||
              o.shape.back() != out_shape.back() || info_[n.outputs[0]].shape != out_shape) {
            break;
          }
          f.bias = other;
          add({c}, "Bias");
          continue;
        }
        if (f.residual != kNoValue || o.shape != info_[n.outputs[0]].shape ||
            o.shape != out_shape) {
          break;
        }
        f.residual = other;
        f.post_ops.push_back({PostOp::Kind::kAddResidual});
      } else {
        break;
      }
      if (info_[n.outputs[0]].shape != out_shape) {  // broadcasting grew the tensor
        if (f.post_ops.back().kind == PostOp::Kind::kAddResidual) f.residual = kNoValue;
        f.post_ops.pop_back();
        break;
      }
      add({c}, n.op_type.c_str());
    }
    if (f.absorbed.empty()) return std::nullopt;
    f.output = cur;
    taken_.insert(anchor);
    return f;
  }

 private:
  const Graph& g_;
  const std::vector<TensorInfo>& info_;
  std::vector<std::vector<int>> uses_;
  std::vector<bool> is_output_;
  std::set<int> taken_;
};

}  // namespace

std::vector<Fusion> find_fusions(const Graph& g, const std::vector<TensorInfo>& info,
                                 const std::vector<int>& live, const std::vector<int>& outputs) {
  Matcher m(g, info, live, outputs);
  std::vector<Fusion> out;
  for (int n : live) {
    if (auto f = m.match(n)) out.push_back(std::move(*f));
  }
  return out;
}

}  // namespace moss::engine
