#include "engine/quant/qdq_rewrite.h"

#include <cmath>
#include <limits>
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
    for (size_t n = 0; n < g_.nodes.size(); ++n) {
      const Node& node = g_.nodes[n];
      if (!node.domain.empty() || node.op_type != "Conv") continue;
      MOSS_ASSIGN_OR_RETURN(bool done, conv(static_cast<int>(n), drop));
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
    // Output: Conv [-> Relu] -> QuantizeLinear, each value read once.
    int last = c, relu = -1;
    int user = only_user(cv.outputs[0]);
    if (user >= 0 && g_.nodes[user].domain.empty() && g_.nodes[user].op_type == "Relu") {
      relu = user;
      last = user;
      user = only_user(g_.nodes[user].outputs[0]);
    }
    if (user < 0 || !g_.nodes[user].domain.empty() ||
        g_.nodes[user].op_type != "QuantizeLinear" || g_.nodes[user].inputs[0] != g_.nodes[last].outputs[0]) {
      keep(cv, "output is not requantized by one QuantizeLinear");
      return false;
    }
    const Node& qy = g_.nodes[user];
    MOSS_ASSIGN_OR_RETURN(QParams y, params(qy, user, 0, 0));
    if (y.node < 0 || !y.per_tensor() || !is_8bit(y.qtype)) {
      keep(cv, "output quantization is not a constant 8-bit per-tensor one");
      return false;
    }
    if (relu >= 0) {
      // Relu before QuantizeLinear is the saturation itself when zero maps to the type's minimum.
      const float qmin = y.qtype == DType::kUInt8 ? 0.0f : -128.0f;
      if (y.zero_point(0) != qmin) {
        keep(cv, "Relu before an output zero point above the type's minimum");
        return false;
      }
    }
    // Bias: float [M] or DequantizeLinear(int32 [M]) -> int32 at scale x_scale * w_scale[m].
    std::vector<int32_t> bias;
    if (cv.has_input(2)) {
      std::vector<float> bf(static_cast<size_t>(m));
      const Tensor* b = constant(cv.inputs[2]);
      const Node* db = producer(cv.inputs[2], "DequantizeLinear");
      if (b && b->dtype() == DType::kFloat32 && b->numel() == m) {
        for (int64_t i = 0; i < m; ++i) bf[i] = b->data<float>()[i];
      } else if (db && constant(db->inputs[0]) &&
                 constant(db->inputs[0])->dtype() == DType::kInt32 &&
                 constant(db->inputs[0])->numel() == m) {
        MOSS_ASSIGN_OR_RETURN(QParams bq, params(*db, g_.values[cv.inputs[2]].producer, 1, m));
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
    }
    // The QLinearConv node takes the Conv's place (its inputs are ready there) and writes the
    // QuantizeLinear's output.
    Node q;
    q.name = cv.name.empty() ? qy.name : cv.name;
    q.op_type = "QLinearConv";
    q.opset = std::max(cv.opset, 10);
    q.attrs = cv.attrs;
    auto zp_value = [&](const QParams& p, const std::string& what, int64_t n) -> int {
      if (p.zp) return p.node == user ? qy.inputs[2] : g_.nodes[p.node].inputs[2];
      auto t = Tensor::zeros(p.qtype, n == 1 ? std::vector<int64_t>{} : std::vector<int64_t>{n});
      return add_constant(fmt::format("{}/moss_{}_zero_point", q.name, what), std::move(t).value());
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
