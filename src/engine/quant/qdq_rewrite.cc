#include "engine/quant/qdq_rewrite.h"

#include "engine/kernels/kernel.h"

#include <cmath>
#include <limits>
#include <optional>
#include <set>

namespace moss::engine {
namespace {

bool is_8bit(DType d) { return d == DType::kInt8 || d == DType::kUInt8; }

// One DequantizeLinear or QuantizeLinear with constant scale and zero point, checked against the
// spec (a failure here is a malformed model, refused).
struct QParams {
  int node = -1;
  int data = kNoValue;          // x (quantized for DQ, float for Q)
  const Tensor* scale = nullptr;
  const Tensor* zp = nullptr;   // null: absent (uint8 zero)
  DType qtype = DType::kUInt8;  // the quantized element type (from the zero point)
  int64_t axis = 1;
  bool per_tensor() const { return scale->numel() == 1 && scale->rank() <= 1; }
  float zero_point(int64_t i) const {
    if (!zp) return 0.0f;
    const int64_t k = zp->numel() == 1 ? 0 : i;
    return zp->dtype() == DType::kInt8 ? zp->data<int8_t>()[k] : zp->data<uint8_t>()[k];
  }
  float scale_at(int64_t i) const { return scale->data<float>()[scale->numel() == 1 ? 0 : i]; }
};

class Rewriter {
 public:
  explicit Rewriter(Graph& g) : g_(g), uses_(g.values.size()) {
    for (size_t n = 0; n < g.nodes.size(); ++n) {
      for (int v : g.nodes[n].inputs) {
        if (v != kNoValue) uses_[v].push_back(static_cast<int>(n));
      }
    }
    for (int o : g.outputs) is_output_.insert(o);
  }

  Result<QdqReport> run() {
    std::vector<bool> drop(g_.nodes.size(), false);
    skip_same_type_casts(drop);
    for (size_t n = 0; n < g_.nodes.size(); ++n) {
      const Node& node = g_.nodes[n];
      if (!node.domain.empty() || drop[n]) continue;
      bool done = false;
      if (node.op_type == "Conv") {
        MOSS_ASSIGN_OR_RETURN(done, conv(static_cast<int>(n), drop));
      } else if (node.op_type == "Add") {
        MOSS_ASSIGN_OR_RETURN(done, add(static_cast<int>(n), drop));
      } else if (node.op_type == "Gemm") {
        MOSS_ASSIGN_OR_RETURN(done, gemm(static_cast<int>(n), drop));
      } else if (node.op_type == "MaxPool") {
        MOSS_ASSIGN_OR_RETURN(done, max_pool(static_cast<int>(n), drop));
      } else if (node.op_type == "MatMulInteger") {
        MOSS_ASSIGN_OR_RETURN(done, dynamic_matmul(static_cast<int>(n), drop));
      }
      report_.rewritten += done ? 1 : 0;
    }
    std::vector<Node> kept;
    for (size_t n = 0; n < g_.nodes.size(); ++n) {
      if (!drop[n]) kept.push_back(std::move(g_.nodes[n]));
    }
    g_.nodes = std::move(kept);
    g_.index_producers();
    return report_;
  }

 private:
  const Tensor* constant(int v) const {
    return v == kNoValue ? nullptr : g_.values[v].constant.get();
  }
  const Node* producer(int v, const char* op) const {
    if (v == kNoValue) return nullptr;
    const int p = g_.values[v].producer;
    if (p < 0) return nullptr;
    const Node& n = g_.nodes[p];
    return n.domain.empty() && n.op_type == op ? &n : nullptr;
  }
  // The single node reading v (v not a graph output), or -1.
  int only_user(int v) const {
    if (is_output_.count(v) || uses_[v].size() != 1) return -1;
    return uses_[v][0];
  }

  // Reads a Q/DQ node's parameters. Returns an error for spec violations; ok with node -1 when
  // the parameters are not constants (nothing to rewrite).
  Result<QParams> params(const Node& q, int index, int64_t data_rank, int64_t axis_dim) const {
    QParams p;
    p.data = q.inputs[0];
    p.scale = constant(q.inputs.size() > 1 ? q.inputs[1] : kNoValue);
    const bool has_zp = q.has_input(2);
    p.zp = has_zp ? constant(q.inputs[2]) : nullptr;
    if (!p.scale || (has_zp && !p.zp)) return p;
    if (p.scale->dtype() != DType::kFloat32) return p;  // float16 scales: left as they are
    if (p.scale->rank() > 1) {
      return invalid_argument("{}: scale has shape {}; QDQ needs a scalar or a 1-D per-axis scale",
                              q.label(), shape_to_string(p.scale->shape()));
    }
    if (p.zp) {
      if (p.zp->shape() != p.scale->shape()) {
        return invalid_argument("{}: zero point shape {} differs from scale shape {}", q.label(),
                                shape_to_string(p.zp->shape()), shape_to_string(p.scale->shape()));
      }
      p.qtype = p.zp->dtype();
    }
    const Tensor* x = constant(p.data);
    if (q.op_type == "DequantizeLinear" && x && p.zp && x->dtype() != p.zp->dtype()) {
      return invalid_argument("{}: zero point type {} differs from the quantized tensor's {}",
                              q.label(), dtype_name(p.zp->dtype()), dtype_name(x->dtype()));
    }
    if (x && !p.zp) p.qtype = x->dtype();
    p.axis = q.attr_int("axis", 1);
    if (p.axis < 0) p.axis += data_rank;
    if (!p.per_tensor() && data_rank > 0) {
      if (p.axis < 0 || p.axis >= data_rank || p.scale->numel() != axis_dim) {
        return invalid_argument("{}: per-axis scale of {} elements does not match axis {} of a "
                                "rank-{} tensor{}",
                                q.label(), p.scale->numel(), q.attr_int("axis", 1), data_rank,
                                axis_dim > 0 ? fmt::format(" (dim {})", axis_dim) : "");
      }
    }
    p.node = index;
    return p;
  }

  // The element type a QuantizeLinear writes, when its zero point says so (else unknown).
  std::optional<DType> quantized_type(int v) const {
    const Node* q = producer(v, "QuantizeLinear");
    if (!q || !q->has_input(2) || !constant(q->inputs[2])) return std::nullopt;
    return constant(q->inputs[2])->dtype();
  }

  // torch's QDQ export puts Cast(to=uint8) between each QuantizeLinear (uint8 already) and its
  // DequantizeLinear readers: an identity. Readers are pointed at the Cast's input, so the
  // patterns below see QuantizeLinear -> DequantizeLinear.
  void skip_same_type_casts(std::vector<bool>& drop) {
    std::vector<int> replace(g_.values.size(), kNoValue);
    bool any = false;
    for (size_t n = 0; n < g_.nodes.size(); ++n) {
      const Node& c = g_.nodes[n];
      if (!c.domain.empty() || c.op_type != "Cast" || c.inputs.size() != 1 ||
          c.outputs.size() != 1 || is_output_.count(c.outputs[0])) {
        continue;
      }
      const auto t = quantized_type(c.inputs[0]);
      auto to = dtype_from_onnx_number(c, c.attr_int("to", 0));
      if (!t || !to.ok() || *to != *t) continue;
      bool plain_users = true;
      for (int u : uses_[c.outputs[0]]) plain_users &= g_.nodes[u].implicit_inputs == 0;
      if (!plain_users) continue;
      replace[c.outputs[0]] = c.inputs[0];
      drop[n] = true;
      any = true;
    }
    if (!any) return;
    for (Node& node : g_.nodes) {
      for (int& v : node.inputs) {
        if (v != kNoValue && replace[v] != kNoValue) v = replace[v];
      }
    }
    for (auto& u : uses_) u.clear();
    for (size_t n = 0; n < g_.nodes.size(); ++n) {
      if (drop[n]) continue;
      for (int v : g_.nodes[n].inputs) {
        if (v != kNoValue) uses_[v].push_back(static_cast<int>(n));
      }
    }
  }

  // The QuantizeLinear that requantizes node `last`'s output, directly or after a Relu that is
  // absorbed by the saturation (zero point at the type's minimum). Every value read once.
  struct Requantize {
    int q = -1, relu = -1;
    QParams y;
  };
  Result<Requantize> requantize(int last, const Node& anchor) {
    Requantize r;
    int user = only_user(g_.nodes[last].outputs[0]);
    if (user >= 0 && g_.nodes[user].domain.empty() && g_.nodes[user].op_type == "Relu") {
      r.relu = user;
      last = user;
      user = only_user(g_.nodes[user].outputs[0]);
    }
    if (user < 0 || !g_.nodes[user].domain.empty() ||
        g_.nodes[user].op_type != "QuantizeLinear" ||
        g_.nodes[user].inputs[0] != g_.nodes[last].outputs[0]) {
      keep(anchor, "output is not requantized by one QuantizeLinear");
      return r;
    }
    MOSS_ASSIGN_OR_RETURN(r.y, params(g_.nodes[user], user, 0, 0));
    if (r.y.node < 0 || !r.y.per_tensor() || !is_8bit(r.y.qtype)) {
      keep(anchor, "output quantization is not a constant 8-bit per-tensor one");
      return r;
    }
    if (r.relu >= 0) {
      const float qmin = r.y.qtype == DType::kUInt8 ? 0.0f : -128.0f;
      if (r.y.zero_point(0) != qmin) {
        keep(anchor, "Relu before an output zero point above the type's minimum");
        return r;
      }
    }
    r.q = user;
    return r;
  }

  // A DequantizeLinear input of `anchor` with constant per-tensor 8-bit parameters, or node -1.
  Result<QParams> activation(const Node& anchor, size_t i) {
    QParams none;
    const Node* d = producer(anchor.inputs[i], "DequantizeLinear");
    if (!d) return none;
    MOSS_ASSIGN_OR_RETURN(QParams p, params(*d, g_.values[anchor.inputs[i]].producer, 0, 0));
    if (p.node < 0 || !p.per_tensor() || !is_8bit(p.qtype) || !p.zp) return none;
    return p;
  }

  // The zero point input of a Q/DQ node (p), or a new zero constant of its type.
  int zero_point_value(const QParams& p, const std::string& name, int64_t n) {
    if (p.zp) return g_.nodes[p.node].inputs[2];
    auto t = Tensor::zeros(p.qtype, n == 1 ? std::vector<int64_t>{} : std::vector<int64_t>{n});
    return add_constant(name, std::move(t).value());
  }

  // DequantizeLinear(a), DequantizeLinear(b) -> Add [-> Relu] -> QuantizeLinear, per-tensor,
  // one 8-bit type: com.microsoft QLinearAdd (ONNX Runtime's QOperator form of the same chain).
  Result<bool> add(int n, std::vector<bool>& drop) {
    const Node& node = g_.nodes[n];
    if (node.inputs.size() != 2) return false;
    MOSS_ASSIGN_OR_RETURN(QParams a, activation(node, 0));
    MOSS_ASSIGN_OR_RETURN(QParams b, activation(node, 1));
    if (a.node < 0 || b.node < 0) return false;  // not a QDQ Add
    if (a.qtype != b.qtype) {
      keep(node, "operands of different 8-bit types");
      return false;
    }
    MOSS_ASSIGN_OR_RETURN(Requantize r, requantize(n, node));
    if (r.q < 0) return false;
    if (r.y.qtype != a.qtype || !r.y.zp) {
      keep(node, "output type differs from the operands'");
      return false;
    }
    if (r.relu >= 0) drop[r.relu] = true;  // the saturation at zero point = minimum is the Relu
    const Node& qy = g_.nodes[r.q];
    Node q;
    q.name = node.name.empty() ? qy.name : node.name;
    q.op_type = "QLinearAdd";
    q.domain = "com.microsoft";
    q.opset = 1;
    q.inputs = {a.data, g_.nodes[a.node].inputs[1], g_.nodes[a.node].inputs[2],
                b.data, g_.nodes[b.node].inputs[1], g_.nodes[b.node].inputs[2],
                qy.inputs[1], qy.inputs[2]};
    q.outputs = {qy.outputs[0]};
    drop[r.q] = true;
    g_.nodes[n] = std::move(q);
    return true;
  }

  // DequantizeLinear(x) -> MaxPool -> QuantizeLinear with the same scale, zero point and type:
  // the maximum commutes with the (monotonic) quantization, so MaxPool runs on x itself.
  Result<bool> max_pool(int n, std::vector<bool>& drop) {
    const Node& node = g_.nodes[n];
    if (node.outputs.size() != 1 || node.inputs.size() != 1) return false;  // no Indices
    MOSS_ASSIGN_OR_RETURN(QParams x, activation(node, 0));
    if (x.node < 0) return false;
    const int user = only_user(node.outputs[0]);
    if (user < 0 || g_.nodes[user].op_type != "QuantizeLinear" || !g_.nodes[user].domain.empty()) {
      keep(node, "output is not requantized by one QuantizeLinear");
      return false;
    }
    MOSS_ASSIGN_OR_RETURN(QParams y, params(g_.nodes[user], user, 0, 0));
    if (y.node < 0 || !y.per_tensor() || !y.zp || y.qtype != x.qtype ||
        y.scale_at(0) != x.scale_at(0) || y.zero_point(0) != x.zero_point(0)) {
      keep(node, "requantized with other parameters than its input's");
      return false;
    }
    Node m = node;
    m.opset = std::max(node.opset, 12);  // MaxPool-12 takes 8-bit tensors
    m.inputs = {x.data};
    m.outputs = {g_.nodes[user].outputs[0]};
    drop[user] = true;
    g_.nodes[n] = std::move(m);
    return true;
  }

  // Input b of anchor (float [M] or DequantizeLinear(int32 [M]) constant, or absent) as int32 at
  // scale x_scale * w_scale[m]. False (reported) when it cannot be expressed.
  Result<bool> int32_bias(const Node& cv, size_t input, const QParams& x, const QParams& w,
                          int64_t m, std::vector<int32_t>& bias) {
    if (!cv.has_input(input)) return true;
    std::vector<float> bf(static_cast<size_t>(m));
    const Tensor* b = constant(cv.inputs[input]);
    const Node* db = producer(cv.inputs[input], "DequantizeLinear");
    if (b && b->dtype() == DType::kFloat32 && b->numel() == m) {
      for (int64_t i = 0; i < m; ++i) bf[i] = b->data<float>()[i];
    } else if (db && constant(db->inputs[0]) &&
               constant(db->inputs[0])->dtype() == DType::kInt32 &&
               constant(db->inputs[0])->numel() == m) {
      MOSS_ASSIGN_OR_RETURN(QParams bq, params(*db, g_.values[cv.inputs[input]].producer, 1, m));
      if (bq.node < 0) {
        keep(cv, "bias scale not constant");
        return false;
      }
      const int32_t* bi = constant(db->inputs[0])->data<int32_t>();
      for (int64_t i = 0; i < m; ++i) {
        const float zp = bq.zp && bq.zp->dtype() == DType::kInt32
                             ? static_cast<float>(bq.zp->data<int32_t>()[bq.zp->numel() == 1 ? 0 : i])
                             : bq.zero_point(i);
        bf[i] = (static_cast<float>(bi[i]) - zp) * bq.scale_at(i);
      }
    } else {
      keep(cv, "bias is neither a float constant nor a dequantized int32 constant");
      return false;
    }
    bias.resize(static_cast<size_t>(m));
    for (int64_t i = 0; i < m; ++i) {
      const double q = std::nearbyint(static_cast<double>(bf[i]) /
                                      (static_cast<double>(x.scale_at(0)) * w.scale_at(i)));
      if (!(std::fabs(q) < 2147483647.0)) {
        keep(cv, "bias does not fit int32 at scale x_scale * w_scale");
        return false;
      }
      bias[i] = static_cast<int32_t>(q);
    }
    return true;
  }

  // DequantizeLinear(a), DequantizeLinear(W const) [, bias] -> Gemm(transA 0, alpha = beta = 1)
  // [-> Relu] -> QuantizeLinear: com.microsoft QGemm (int8 matmul, W held as int8).
  Result<bool> gemm(int n, std::vector<bool>& drop) {
    const Node& gm = g_.nodes[n];
    if (gm.inputs.size() < 2) return false;
    MOSS_ASSIGN_OR_RETURN(QParams a, activation(gm, 0));
    const Node* dw = producer(gm.inputs[1], "DequantizeLinear");
    if (a.node < 0 || !dw) return false;  // not a QDQ Gemm
    const Tensor* wq = constant(dw->inputs[0]);
    if (!wq || wq->rank() != 2) {
      keep(gm, "weights are not a 2-D constant");
      return false;
    }
    if (gm.attr_int("transA", 0) != 0 || gm.attr_float("alpha", 1.0f) != 1.0f ||
        gm.attr_float("beta", 1.0f) != 1.0f) {
      keep(gm, "transA, alpha or beta");
      return false;
    }
    const bool tb = gm.attr_int("transB", 0) != 0;
    const int64_t n_axis = tb ? 0 : 1, cols = wq->shape()[static_cast<size_t>(n_axis)];
    const int64_t waxis = dw->attr_int("axis", 1);
    MOSS_ASSIGN_OR_RETURN(QParams w, params(*dw, g_.values[gm.inputs[1]].producer, 2,
                                            waxis >= 0 && waxis < 2 ? wq->shape()[waxis] : -1));
    if (w.node < 0 || !is_8bit(w.qtype)) {
      keep(gm, "weight quantization not constant 8-bit");
      return false;
    }
    if (!w.per_tensor() && w.axis != n_axis) {
      keep(gm, "weights quantized along another axis than the output columns");
      return false;
    }
    MOSS_ASSIGN_OR_RETURN(Requantize r, requantize(n, gm));
    if (r.q < 0) return false;
    std::vector<int32_t> bias;
    MOSS_ASSIGN_OR_RETURN(bool bias_ok, int32_bias(gm, 2, a, w, cols, bias));
    if (!bias_ok) return false;
    const Node& qy = g_.nodes[r.q];
    Node q;
    q.name = gm.name.empty() ? qy.name : gm.name;
    q.op_type = "QGemm";
    q.domain = "com.microsoft";
    q.opset = 1;
    if (auto it = gm.attrs.find("transB"); it != gm.attrs.end()) q.attrs.insert(*it);
    const int wzp = zero_point_value(w, fmt::format("{}/moss_w_zero_point", q.name),
                                     w.scale->numel());
    const int c = bias.empty() ? kNoValue
                               : add_constant(fmt::format("{}/moss_bias_int32", q.name),
                                              Tensor::from_vector<int32_t>({cols}, bias));
    q.inputs = {a.data, g_.nodes[a.node].inputs[1], g_.nodes[a.node].inputs[2],
                dw->inputs[0], dw->inputs[1], wzp, c, qy.inputs[1],
                zero_point_value(r.y, fmt::format("{}/moss_y_zero_point", q.name), 1)};
    q.outputs = {qy.outputs[0]};
    drop[r.q] = true;
    if (r.relu >= 0) drop[r.relu] = true;
    g_.nodes[n] = std::move(q);
    return true;
  }

  bool is_op(int n, const char* op) const {
    return n >= 0 && g_.nodes[n].domain.empty() && g_.nodes[n].op_type == op &&
           g_.nodes[n].outputs.size() == 1;
  }

  // The other input of a binary node whose inputs are {v, other}, or kNoValue.
  static int other_input(const Node& n, int v) {
    if (n.inputs.size() != 2) return kNoValue;
    if (n.inputs[0] == v && n.inputs[1] != v) return n.inputs[1];
    if (n.inputs[1] == v && n.inputs[0] != v) return n.inputs[0];
    return kNoValue;
  }

  // ONNX Runtime's quantize_dynamic form (torch's dynamic Linear, written out the same way):
  //   DynamicQuantizeLinear(x) -> (x_q, x_scale, x_zp)
  //   MatMulInteger(x_q, B, x_zp [, b_zp]) -> Cast(float) -> Mul(., Mul(x_scale, b_scale))
  //   [-> Add(., bias)]
  // with B a constant 2-D 8-bit matrix, b_scale/b_zp constants (scalars or [N]) and bias a float
  // constant of N elements: one com.microsoft DynamicQuantizeMatMul (one int8 matmul step, to
  // which the planner fuses what follows, e.g. the GELU). The DynamicQuantizeLinear and the scale
  // Mul are left to other readers (ORT shares them between the Q, K and V projections), else
  // removed as dead.
  Result<bool> dynamic_matmul(int n, std::vector<bool>& drop) {
    const Node& mm = g_.nodes[n];
    if (mm.inputs.size() < 3 || mm.outputs.size() != 1) return false;
    const int dn = mm.inputs[0] == kNoValue ? -1 : g_.values[mm.inputs[0]].producer;
    if (dn < 0 || !g_.nodes[dn].domain.empty() ||
        g_.nodes[dn].op_type != "DynamicQuantizeLinear" || g_.nodes[dn].outputs.size() != 3) {
      return false;  // not dynamic quantization
    }
    const Node& dq = g_.nodes[dn];
    if (mm.inputs[0] != dq.outputs[0] || mm.inputs[2] != dq.outputs[2]) return false;
    const Tensor* b = constant(mm.inputs[1]);
    if (!b || b->rank() != 2 || !is_8bit(b->dtype())) {
      keep(mm, "B is not a constant 2-D 8-bit matrix");
      return false;
    }
    const int64_t cols = b->shape()[1];
    const Tensor* bzp = mm.has_input(3) ? constant(mm.inputs[3]) : nullptr;
    if (mm.has_input(3) && (!bzp || bzp->dtype() != b->dtype() ||
                            (bzp->numel() != 1 && bzp->numel() != cols) || bzp->rank() > 1)) {
      keep(mm, "B's zero point is not a constant scalar or [N] of B's type");
      return false;
    }
    const int cast = only_user(mm.outputs[0]);
    if (!is_op(cast, "Cast") ||
        g_.nodes[cast].attr_int("to", 0) != 1 /* TensorProto.FLOAT */) {
      keep(mm, "the int32 product is not cast to float");
      return false;
    }
    const int mul = only_user(g_.nodes[cast].outputs[0]);
    const int scale = is_op(mul, "Mul") ? other_input(g_.nodes[mul], g_.nodes[cast].outputs[0])
                                        : kNoValue;
    const int sn = scale == kNoValue ? -1 : g_.values[scale].producer;
    const int bs = is_op(sn, "Mul") ? other_input(g_.nodes[sn], dq.outputs[1]) : kNoValue;
    const Tensor* bst = constant(bs);
    if (!bst || bst->dtype() != DType::kFloat32 || bst->rank() > 1 ||
        (bst->numel() != 1 && bst->numel() != cols) || (bzp && bzp->numel() != bst->numel())) {
      keep(mm, "the product is not scaled by x_scale times a constant b_scale");
      return false;
    }
    int out = g_.nodes[mul].outputs[0], bias = kNoValue;
    const int add = only_user(out);
    if (is_op(add, "Add")) {
      const int other = other_input(g_.nodes[add], out);
      const Tensor* t = constant(other);
      if (t && t->dtype() == DType::kFloat32 && t->numel() == cols && t->rank() >= 1 &&
          t->shape().back() == cols) {
        bias = t->rank() == 1 ? other
                              : add_constant(fmt::format("{}/moss_bias", mm.name),
                                             Tensor::from_bytes(DType::kFloat32, {cols},
                                                                t->bytes()).value());
        drop[add] = true;
        out = g_.nodes[add].outputs[0];
      }
    }
    Node q;
    q.name = mm.name;
    q.op_type = "DynamicQuantizeMatMul";
    q.domain = "com.microsoft";
    q.opset = 1;
    q.inputs = {dq.inputs[0], mm.inputs[1], bs, bzp ? mm.inputs[3] : kNoValue, bias};
    while (q.inputs.back() == kNoValue) q.inputs.pop_back();
    q.outputs = {out};
    drop[cast] = drop[mul] = true;
    g_.nodes[n] = std::move(q);
    return true;
  }

  int add_constant(const std::string& name, Tensor t) {
    const int v = g_.add_value(name);
    g_.values[v].constant = std::make_shared<const Tensor>(std::move(t));
    uses_.emplace_back();
    return v;
  }

  void keep(const Node& n, const std::string& why) {
    report_.kept.push_back(fmt::format("{}: {}", n.label(), why));
  }

  Result<bool> conv(int c, std::vector<bool>& drop) {
    const Node& cv = g_.nodes[c];
    const Node* dx = producer(cv.inputs[0], "DequantizeLinear");
    const Node* dw = cv.inputs.size() > 1 ? producer(cv.inputs[1], "DequantizeLinear") : nullptr;
    if (!dx || !dw) return false;  // not a QDQ Conv
    const Tensor* wq = constant(dw->inputs[0]);
    if (!wq) {
      keep(cv, "weights are not constant");
      return false;
    }
    const int64_t rank = static_cast<int64_t>(wq->rank());
    const int64_t m = rank > 0 ? wq->shape()[0] : 0;
    MOSS_ASSIGN_OR_RETURN(QParams x, params(*dx, g_.values[cv.inputs[0]].producer, 0, 0));
    MOSS_ASSIGN_OR_RETURN(QParams w, params(*dw, g_.values[cv.inputs[1]].producer, rank,
                                            rank > 0 && dw->attr_int("axis", 1) >= 0 &&
                                                    dw->attr_int("axis", 1) < rank
                                                ? wq->shape()[dw->attr_int("axis", 1)]
                                                : -1));
    if (x.node < 0 || w.node < 0) {
      keep(cv, "scale or zero point not constant");
      return false;
    }
    if (!x.per_tensor()) {
      keep(cv, "input quantized per axis");
      return false;
    }
    if (!is_8bit(x.qtype) || !is_8bit(w.qtype) || rank < 3) {
      keep(cv, "not an 8-bit tensor");
      return false;
    }
    if (!w.per_tensor() && w.axis != 0) {
      keep(cv, "weights quantized along an axis other than the output channels");
      return false;
    }
    MOSS_ASSIGN_OR_RETURN(Requantize r, requantize(c, cv));
    if (r.q < 0) return false;
    const int user = r.q, relu = r.relu;
    const Node& qy = g_.nodes[user];
    const QParams& y = r.y;
    std::vector<int32_t> bias;
    MOSS_ASSIGN_OR_RETURN(bool bias_ok, int32_bias(cv, 2, x, w, m, bias));
    if (!bias_ok) return false;
    // The QLinearConv node takes the Conv's place (its inputs are ready there) and writes the
    // QuantizeLinear's output.
    Node q;
    q.name = cv.name.empty() ? qy.name : cv.name;
    q.op_type = "QLinearConv";
    q.opset = std::max(cv.opset, 10);
    q.attrs = cv.attrs;
    auto zp_value = [&](const QParams& p, const std::string& what, int64_t n) {
      return zero_point_value(p, fmt::format("{}/moss_{}_zero_point", q.name, what), n);
    };
    const int xzp = zp_value(x, "x", 1), wzp = zp_value(w, "w", w.scale->numel()),
              yzp = zp_value(y, "y", 1);
    q.inputs = {dx->inputs[0], dx->inputs[1], xzp, dw->inputs[0], dw->inputs[1], wzp,
                qy.inputs[1], yzp};
    if (!bias.empty()) {
      q.inputs.push_back(add_constant(fmt::format("{}/moss_bias_int32", q.name),
                                      Tensor::from_vector<int32_t>({m}, bias)));
    }
    q.outputs = {qy.outputs[0]};
    drop[user] = true;
    if (relu >= 0) drop[relu] = true;
    g_.nodes[c] = std::move(q);
    return true;
  }

  Graph& g_;
  std::vector<std::vector<int>> uses_;
  std::set<int> is_output_;
  QdqReport report_;
};

}  // namespace

Result<QdqReport> rewrite_qdq(Graph& g) {
  g.index_producers();
  return Rewriter(g).run();
}

}  // namespace moss::engine
