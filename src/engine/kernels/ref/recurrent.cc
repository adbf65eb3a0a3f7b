// LSTM, GRU and RNN (ONNX definitions, opsets 7-14): every direction (forward, reverse,
// bidirectional), both layouts, sequence_lens, initial states, LSTM peepholes and input_forget,
// GRU linear_before_reset, clip and the activation list with its alpha/beta. Float32; batches
// run independently (a sequence shorter than the input stops early, its later outputs are 0).
#include "engine/kernels/onednn/onednn_ops.h"
#include "engine/kernels/ref/fast_math.h"
#include "engine/kernels/ref/ref_kernels.h"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace moss::engine::ref {
namespace {

enum class Cell { kRnn, kGru, kLstm };

struct CellSpec {
  int gates;        // weight blocks: RNN 1, GRU 3 (z r h), LSTM 4 (i o f c)
  int activations;  // per direction: RNN f, GRU f g, LSTM f g h
  size_t max_inputs, outputs;
};

CellSpec spec_of(Cell c) {
  switch (c) {
    case Cell::kRnn: return {1, 1, 6, 2};
    case Cell::kGru: return {3, 2, 6, 2};
    case Cell::kLstm: return {4, 3, 8, 3};
  }
  return {1, 1, 6, 2};
}

struct Activation {
  enum class Kind {
    kRelu, kTanh, kSigmoid, kAffine, kLeakyRelu, kThresholdedRelu, kScaledTanh, kHardSigmoid,
    kElu, kSoftsign, kSoftplus
  };
  Kind kind = Kind::kTanh;
  float alpha = 0, beta = 0;

  float operator()(float x) const {
    switch (kind) {
      case Kind::kRelu: return std::max(x, 0.f);
      case Kind::kTanh: return fast_tanh(x);
      case Kind::kSigmoid: return fast_sigmoid(x);
      case Kind::kAffine: return alpha * x + beta;
      case Kind::kLeakyRelu: return x >= 0 ? x : alpha * x;
      case Kind::kThresholdedRelu: return x > alpha ? x : 0.f;
      case Kind::kScaledTanh: return alpha * fast_tanh(beta * x);
      case Kind::kHardSigmoid: return std::clamp(alpha * x + beta, 0.f, 1.f);
      case Kind::kElu: return x >= 0 ? x : alpha * (std::exp(x) - 1.f);
      case Kind::kSoftsign: return x / (1.f + std::fabs(x));
      case Kind::kSoftplus: return std::log1p(std::exp(x));
    }
    return x;
  }
};

struct Params {
  Cell cell;
  int64_t dirs = 1, seq = 0, batch = 0, input = 0, hidden = 0;
  bool reverse_only = false, layout1 = false;
  float clip = 0;  // 0 = none
  bool input_forget = false, linear_before_reset = false;
  std::vector<Activation> acts;  // dirs * activations
};

// Names are matched case-insensitively (ONNX Runtime does); alpha/beta are taken in order by the
// activations that use them, with ONNX Runtime's defaults when the lists run out.
Result<std::vector<Activation>> parse_activations(const Node& node, const CellSpec& spec,
                                                  int64_t dirs) {
  std::vector<std::string> names;
  if (const Attribute* a = node.attr("activations")) names = a->strings;
  const size_t want = static_cast<size_t>(spec.activations * dirs);
  if (names.empty()) {
    for (int64_t d = 0; d < dirs; ++d) {
      if (spec.activations == 1) names.push_back("tanh");
      if (spec.activations >= 2) names.insert(names.end(), {"sigmoid", "tanh"});
      if (spec.activations == 3) names.push_back("tanh");
    }
  } else if (names.size() == static_cast<size_t>(spec.activations) && dirs == 2) {
    const std::vector<std::string> once = names;  // one list for both directions
    names.insert(names.end(), once.begin(), once.end());
  }
  if (names.size() != want) {
    return invalid_argument("{}: activations lists {} functions, expected {}", node.label(),
                            names.size(), want);
  }
  std::vector<float> alphas, betas;
  if (const Attribute* a = node.attr("activation_alpha")) alphas = a->floats;
  if (const Attribute* a = node.attr("activation_beta")) betas = a->floats;
  size_t ai = 0, bi = 0;
  std::vector<Activation> out;
  for (std::string n : names) {
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
    using K = Activation::Kind;
    Activation a;
    float da = 0, db = 0;
    bool uses_a = false, uses_b = false;
    if (n == "relu") a.kind = K::kRelu;
    else if (n == "tanh") a.kind = K::kTanh;
    else if (n == "sigmoid") a.kind = K::kSigmoid;
    else if (n == "affine") { a.kind = K::kAffine; da = 1; uses_a = uses_b = true; }
    else if (n == "leakyrelu") { a.kind = K::kLeakyRelu; da = 0.01f; uses_a = true; }
    else if (n == "thresholdedrelu") { a.kind = K::kThresholdedRelu; da = 1; uses_a = true; }
    else if (n == "scaledtanh") { a.kind = K::kScaledTanh; da = 1; db = 1; uses_a = uses_b = true; }
    else if (n == "hardsigmoid") { a.kind = K::kHardSigmoid; da = 0.2f; db = 0.5f; uses_a = uses_b = true; }
    else if (n == "elu") { a.kind = K::kElu; da = 1; uses_a = true; }
    else if (n == "softsign") a.kind = K::kSoftsign;
    else if (n == "softplus") a.kind = K::kSoftplus;
    else return unimplemented("{}: activation '{}' is not supported", node.label(), n);
    a.alpha = uses_a && ai < alphas.size() ? alphas[ai++] : da;
    a.beta = uses_b && bi < betas.size() ? betas[bi++] : db;
    out.push_back(a);
  }
  return out;
}

Status check_shape(const Node& node, const TensorInfo* t, const char* what,
                   std::vector<int64_t> want) {
  if (!t) return Status::Ok();
  if (t->shape != want) {
    return invalid_argument("{}: {} has shape {}, expected {}", node.label(), what,
                            shape_to_string(t->shape), shape_to_string(want));
  }
  return Status::Ok();
}

Result<Params> params_of(const Node& node, std::span<const TensorInfo* const> in, Cell cell) {
  const CellSpec spec = spec_of(cell);
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, spec.max_inputs));
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] && i != 4) MOSS_RETURN_IF_ERROR(require_dtype(node, *in[i], {DType::kFloat32}, "input"));
  }
  if (in.size() > 4 && in[4]) MOSS_RETURN_IF_ERROR(require_dtype(node, *in[4], {DType::kInt32}, "sequence_lens"));
  Params p;
  p.cell = cell;
  const std::string dir = node.attr_string("direction", "forward");
  if (dir == "bidirectional") p.dirs = 2;
  else if (dir == "reverse") p.reverse_only = true;
  else if (dir != "forward") return invalid_argument("{}: direction '{}' is not valid", node.label(), dir);
  const int64_t layout = node.attr_int("layout", 0);
  if (layout != 0 && layout != 1) return invalid_argument("{}: layout must be 0 or 1", node.label());
  p.layout1 = layout == 1;
  const auto& x = in[0]->shape;
  if (x.size() != 3) return invalid_argument("{}: X must be rank 3, got {}", node.label(), shape_to_string(x));
  p.seq = p.layout1 ? x[1] : x[0];
  p.batch = p.layout1 ? x[0] : x[1];
  p.input = x[2];
  const auto& r = in[2]->shape;
  p.hidden = node.attr_int("hidden_size", r.size() == 3 ? r[2] : -1);
  if (p.hidden <= 0) return invalid_argument("{}: hidden_size is missing or not positive", node.label());
  const int64_t G = spec.gates * p.hidden;
  MOSS_RETURN_IF_ERROR(check_shape(node, in[1], "W", {p.dirs, G, p.input}));
  MOSS_RETURN_IF_ERROR(check_shape(node, in[2], "R", {p.dirs, G, p.hidden}));
  auto opt = [&](size_t i) { return i < in.size() ? in[i] : nullptr; };
  MOSS_RETURN_IF_ERROR(check_shape(node, opt(3), "B", {p.dirs, 2 * G}));
  MOSS_RETURN_IF_ERROR(check_shape(node, opt(4), "sequence_lens", {p.batch}));
  const std::vector<int64_t> state = p.layout1 ? std::vector<int64_t>{p.batch, p.dirs, p.hidden}
                                               : std::vector<int64_t>{p.dirs, p.batch, p.hidden};
  MOSS_RETURN_IF_ERROR(check_shape(node, opt(5), "initial_h", state));
  if (cell == Cell::kLstm) {
    MOSS_RETURN_IF_ERROR(check_shape(node, opt(6), "initial_c", state));
    MOSS_RETURN_IF_ERROR(check_shape(node, opt(7), "P", {p.dirs, 3 * p.hidden}));
    p.input_forget = node.attr_int("input_forget", 0) != 0;
  }
  if (cell == Cell::kGru) p.linear_before_reset = node.attr_int("linear_before_reset", 0) != 0;
  p.clip = node.attr_float("clip", 0.f);
  if (p.clip < 0) return invalid_argument("{}: clip must be positive", node.label());
  MOSS_ASSIGN_OR_RETURN(p.acts, parse_activations(node, spec, p.dirs));
  return p;
}

template <Cell C>
Status infer_cell(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  MOSS_ASSIGN_OR_RETURN(Params p, params_of(node, in, C));
  const std::vector<int64_t> y = p.layout1 ? std::vector<int64_t>{p.batch, p.seq, p.dirs, p.hidden}
                                           : std::vector<int64_t>{p.seq, p.dirs, p.batch, p.hidden};
  const std::vector<int64_t> st = p.layout1 ? std::vector<int64_t>{p.batch, p.dirs, p.hidden}
                                            : std::vector<int64_t>{p.dirs, p.batch, p.hidden};
  out.push_back(TensorInfo{DType::kFloat32, y, nullptr});
  out.push_back(TensorInfo{DType::kFloat32, st, nullptr});
  if (C == Cell::kLstm) out.push_back(TensorInfo{DType::kFloat32, st, nullptr});
  return Status::Ok();
}

// out[0, rows] += v[0, cols] x m[rows, cols]^T (m row-major): a matrix-vector product on oneDNN's
// sgemm, vectorized for the host (a scalar loop made these cells 10-20x slower than ONNX Runtime).
Status gemv_add(const float* m, const float* v, int64_t rows, int64_t cols, float* out) {
  return onednn::sgemm(false, true, 1, rows, cols, v, cols, m, cols, 1.0f, out, rows);
}

template <Cell C>
Status run_cell(const Node& node, std::span<const View> in, std::span<const View> out) {
  std::vector<TensorInfo> infos(in.size());
  std::vector<const TensorInfo*> ptrs(in.size(), nullptr);
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i].present()) continue;
    infos[i] = TensorInfo{in[i].dtype, {in[i].shape.begin(), in[i].shape.end()}, nullptr};
    ptrs[i] = &infos[i];
  }
  MOSS_ASSIGN_OR_RETURN(Params p, params_of(node, ptrs, C));
  const CellSpec spec = spec_of(C);
  const int64_t H = p.hidden, I = p.input, NG = spec.gates, G = NG * H;
  auto opt = [&](size_t i) -> const float* {
    return i < in.size() && in[i].present() ? in[i].as<float>() : nullptr;
  };
  const float* X = in[0].as<float>();
  const float* B = opt(3);
  const int32_t* lens = in.size() > 4 && in[4].present() ? in[4].as<int32_t>() : nullptr;
  const float* H0 = opt(5);
  const float* C0 = C == Cell::kLstm ? opt(6) : nullptr;
  const float* P = C == Cell::kLstm ? opt(7) : nullptr;
  float* Y = out.size() > 0 && out[0].data ? out[0].as<float>() : nullptr;
  float* Yh = out.size() > 1 && out[1].data ? out[1].as<float>() : nullptr;
  float* Yc = C == Cell::kLstm && out.size() > 2 && out[2].data ? out[2].as<float>() : nullptr;
  for (size_t o = 0; o < out.size(); ++o) {
    if (out[o].data) std::fill_n(out[o].as<float>(), out[o].numel, 0.f);
  }
  // Index helpers for the two layouts.
  auto x_at = [&](int64_t t, int64_t b) {
    return X + (p.layout1 ? (b * p.seq + t) : (t * p.batch + b)) * I;
  };
  auto y_at = [&](int64_t t, int64_t d, int64_t b) {
    return Y + (p.layout1 ? ((b * p.seq + t) * p.dirs + d) : ((t * p.dirs + d) * p.batch + b)) * H;
  };
  auto state_at = [&](int64_t d, int64_t b) {
    return (p.layout1 ? (b * p.dirs + d) : (d * p.batch + b)) * H;
  };
  auto clip = [&](float v) { return p.clip > 0 ? std::clamp(v, -p.clip, p.clip) : v; };
  std::vector<float> h(H), c(H), gx(G), gh(G), rh(H), gx_all(static_cast<size_t>(p.seq * G));
  for (int64_t d = 0; d < p.dirs; ++d) {
    const bool reverse = p.reverse_only || d == 1;
    const float* W = in[1].as<float>() + d * G * I;
    const float* R = in[2].as<float>() + d * G * H;
    const float* Wb = B ? B + d * 2 * G : nullptr;
    const float* Rb = B ? Wb + G : nullptr;
    const float* Pd = P ? P + d * 3 * H : nullptr;
    const Activation* act = p.acts.data() + d * spec.activations;
    for (int64_t b = 0; b < p.batch; ++b) {
      const int64_t len = lens ? std::clamp<int64_t>(lens[b], 0, p.seq) : p.seq;
      for (int64_t k = 0; k < H; ++k) {
        h[k] = H0 ? H0[state_at(d, b) + k] : 0.f;
        c[k] = C0 ? C0[state_at(d, b) + k] : 0.f;
      }
      // The input projection of every step at once: gx_all[t] = Wb + x_t W^T.
      for (int64_t t = 0; t < len; ++t) {
        if (Wb) std::copy_n(Wb, G, gx_all.begin() + t * G);
        else std::fill_n(gx_all.begin() + t * G, G, 0.f);
      }
      if (len > 0) {
        MOSS_RETURN_IF_ERROR(onednn::sgemm(false, true, len, G, I, x_at(0, b),
                                           p.layout1 ? I : p.batch * I, W, I, 1.0f,
                                           gx_all.data(), G));
      }
      for (int64_t s = 0; s < len; ++s) {
        const int64_t t = reverse ? len - 1 - s : s;
        std::copy_n(gx_all.begin() + t * G, G, gx.begin());
        std::fill(gh.begin(), gh.end(), 0.f);
        if (Rb) std::copy_n(Rb, G, gh.begin());
        if (C == Cell::kGru && !p.linear_before_reset) {
          // z and r from H; h's recurrent term uses r (.) H, computed below.
          MOSS_RETURN_IF_ERROR(gemv_add(R, h.data(), 2 * H, H, gh.data()));
        } else {
          MOSS_RETURN_IF_ERROR(gemv_add(R, h.data(), G, H, gh.data()));
        }
        if constexpr (C == Cell::kRnn) {
          for (int64_t k = 0; k < H; ++k) h[k] = act[0](clip(gx[k] + gh[k]));
        } else if constexpr (C == Cell::kGru) {
          float* z = gx.data();  // reuse: gates z, r, h at 0, H, 2H
          for (int64_t k = 0; k < H; ++k) {
            z[k] = act[0](clip(gx[k] + gh[k]));
            gx[H + k] = act[0](clip(gx[H + k] + gh[H + k]));
          }
          const float* r = gx.data() + H;
          if (p.linear_before_reset) {
            for (int64_t k = 0; k < H; ++k) gx[2 * H + k] += r[k] * gh[2 * H + k];
          } else {
            for (int64_t k = 0; k < H; ++k) rh[k] = r[k] * h[k];
            std::vector<float>& acc = gh;
            std::fill(acc.begin() + 2 * H, acc.end(), 0.f);
            if (Rb) std::copy_n(Rb + 2 * H, H, acc.begin() + 2 * H);
            MOSS_RETURN_IF_ERROR(gemv_add(R + 2 * H * H, rh.data(), H, H, acc.data() + 2 * H));
            for (int64_t k = 0; k < H; ++k) gx[2 * H + k] += acc[2 * H + k];
          }
          for (int64_t k = 0; k < H; ++k) {
            const float hh = act[1](clip(gx[2 * H + k]));
            h[k] = (1.f - z[k]) * hh + z[k] * h[k];
          }
        } else {  // LSTM, gate blocks i o f c
          for (int64_t k = 0; k < H; ++k) {
            float gi = gx[k] + gh[k], go = gx[H + k] + gh[H + k];
            float gf = gx[2 * H + k] + gh[2 * H + k], gc = gx[3 * H + k] + gh[3 * H + k];
            if (Pd) {
              gi += Pd[k] * c[k];
              gf += Pd[2 * H + k] * c[k];
            }
            const float i_t = act[0](clip(gi));
            const float f_t = p.input_forget ? 1.f - i_t : act[0](clip(gf));
            const float c_t = act[1](clip(gc));
            c[k] = f_t * c[k] + i_t * c_t;
            if (Pd) go += Pd[H + k] * c[k];
            const float o_t = act[0](clip(go));
            h[k] = o_t * act[2](c[k]);
          }
        }
        if (Y) std::copy_n(h.data(), H, y_at(t, d, b));
      }
      if (Yh) std::copy_n(h.data(), H, Yh + state_at(d, b));
      if (Yc) std::copy_n(c.data(), H, Yc + state_at(d, b));
    }
  }
  return Status::Ok();
}

}  // namespace

std::vector<OpKernel> recurrent_kernels() {
  return {{"RNN", infer_cell<Cell::kRnn>, run_cell<Cell::kRnn>},
          {"GRU", infer_cell<Cell::kGru>, run_cell<Cell::kGru>},
          {"LSTM", infer_cell<Cell::kLstm>, run_cell<Cell::kLstm>}};
}

}  // namespace moss::engine::ref
