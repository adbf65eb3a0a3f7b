// com.microsoft contrib operators written by ONNX Runtime's transformer optimizer and quantizer
// (spec: onnxruntime docs/ContribOperators.md), float32 as ONNX Runtime's CPU provider runs them
// and float16 (computed in float32, below):
// Gelu, FastGelu, BiasGelu, QuickGelu, SkipLayerNormalization, EmbedLayerNormalization,
// Attention, MultiHeadAttention, FusedMatMul. Forms ONNX Runtime's CPU kernels have but these do
// not (past/present key-value caches, attention_bias, rotary embeddings, packed QKV inputs,
// transBatch) are refused in infer() naming the input or attribute.
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace moss::engine::ref {
namespace {

Status require_f32(const Node& node, std::span<const TensorInfo* const> in) {
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] && is_float_dtype(in[i]->dtype)) {
      MOSS_RETURN_IF_ERROR(require_dtype(node, *in[i], {DType::kFloat32}, "input"));
    }
  }
  return Status::Ok();
}

// Inputs from `from` on, named in order by `names`, are optional forms the kernel does not
// implement: refused naming the first one given.
Status require_absent(const Node& node, std::span<const TensorInfo* const> in, size_t from,
                      std::initializer_list<const char*> names) {
  for (size_t i = from; i < in.size(); ++i) {
    if (!in[i]) continue;
    const size_t k = i - from;
    return unimplemented("{}: input {} ('{}') is not supported", node.label(), i,
                         k < names.size() ? names.begin()[k] : "unknown");
  }
  return Status::Ok();
}

// Fails unless t is [n] (a per-channel vector over the last dimension).
Status require_vector(const Node& node, const TensorInfo* t, int64_t n, const char* what) {
  if (t && (t->shape.size() != 1 || t->shape[0] != n)) {
    return invalid_argument("{}: {} must be [{}], got {}", node.label(), what, n, shape_to_string(t->shape));
  }
  return Status::Ok();
}

// ---- Gelu family -----------------------------------------------------------------------------

float gelu_erf(float x) { return 0.5f * x * (1.0f + std::erf(x * static_cast<float>(std::numbers::sqrt2 / 2))); }
float gelu_tanh(float x) {
  const float k = static_cast<float>(std::sqrt(2.0 / std::numbers::pi));
  return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
}

Status infer_gelu_family(const Node& node, std::span<const TensorInfo* const> in,
                         std::vector<TensorInfo>& out) {
  const bool bias_required = node.op_type == "BiasGelu";
  const bool bias_allowed = bias_required || node.op_type == "FastGelu";
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, bias_required ? 2 : 1, bias_allowed ? 2 : 1));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kFloat32}, "X"));
  if (in.size() > 1 && in[1]) {
    MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[1], "bias"));
    if (in[0]->shape.empty()) return invalid_argument("{}: X must have rank >= 1", node.label());
    MOSS_RETURN_IF_ERROR(require_vector(node, in[1], in[0]->shape.back(), "bias"));
  }
  return set_out(out, in[0]->dtype, in[0]->shape);
}

Status run_gelu_family(const Node& node, std::span<const View> in, std::span<const View> out) {
  const float* x = in[0].as<float>();
  const float* b = in.size() > 1 && in[1].data ? in[1].as<float>() : nullptr;
  const int64_t h = b ? in[1].numel : 1;
  float* y = out[0].as<float>();
  const std::string& op = node.op_type;
  const float alpha = node.attr_float("alpha", 1.702f);
  for (int64_t i = 0; i < out[0].numel; ++i) {
    const float v = x[i] + (b ? b[i % h] : 0.0f);
    if (op == "FastGelu") y[i] = gelu_tanh(v);
    else if (op == "QuickGelu") y[i] = v / (1.0f + std::exp(-alpha * v));
    else y[i] = gelu_erf(v);
  }
  return Status::Ok();
}

// Normalises n values of s over themselves: (s - mean) / sqrt(var + eps) * gamma + beta.
void layer_norm_row(const float* s, int64_t n, float eps, const float* gamma, const float* beta, float* y) {
  double mean = 0, sq = 0;
  for (int64_t j = 0; j < n; ++j) mean += s[j];
  mean /= static_cast<double>(n);
  for (int64_t j = 0; j < n; ++j) sq += (s[j] - mean) * (s[j] - mean);
  const float inv = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(n) + eps));
  for (int64_t j = 0; j < n; ++j) {
    y[j] = static_cast<float>(s[j] - mean) * inv * gamma[j] + (beta ? beta[j] : 0.0f);
  }
}

// ---- SkipLayerNormalization ------------------------------------------------------------------

Status infer_SkipLayerNormalization(const Node& node, std::span<const TensorInfo* const> in,
                                    std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, 5));
  MOSS_RETURN_IF_ERROR(require_f32(node, in));
  const auto& x = in[0]->shape;
  if (x.size() != 3) return invalid_argument("{}: input must be [batch, sequence, hidden]", node.label());
  const auto& sk = in[1]->shape;
  // skip: same shape, or [sequence, hidden] / [1, sequence, hidden] broadcast over the batch.
  const bool skip_ok = sk == x || (sk.size() == 2 && sk[0] == x[1] && sk[1] == x[2]) ||
                       (sk.size() == 3 && sk[0] == 1 && sk[1] == x[1] && sk[2] == x[2]);
  if (!skip_ok) return invalid_argument("{}: skip shape {} does not fit input {}", node.label(), shape_to_string(sk), shape_to_string(x));
  MOSS_RETURN_IF_ERROR(require_vector(node, in[2], x[2], "gamma"));
  MOSS_RETURN_IF_ERROR(require_vector(node, in.size() > 3 ? in[3] : nullptr, x[2], "beta"));
  MOSS_RETURN_IF_ERROR(require_vector(node, in.size() > 4 ? in[4] : nullptr, x[2], "bias"));
  for (size_t i = 1; i < 3 && i < node.outputs.size(); ++i) {
    if (node.outputs[i] != kNoValue) {
      return unimplemented("{}: output {} (mean / inv_std_var, training only) is not supported", node.label(), i);
    }
  }
  out.assign(node.outputs.size() > 3 ? 4 : 1, TensorInfo{DType::kFloat32, x, nullptr});
  return Status::Ok();
}

Status run_SkipLayerNormalization(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t h = in[0].shape[2];
  const int64_t rows = in[0].numel / std::max<int64_t>(h, 1);
  const int64_t skip_rows = in[1].numel / std::max<int64_t>(h, 1);
  const float* beta = in.size() > 3 && in[3].data ? in[3].as<float>() : nullptr;
  const float* bias = in.size() > 4 && in[4].data ? in[4].as<float>() : nullptr;
  float* sum_out = out.size() > 3 && out[3].data ? out[3].as<float>() : nullptr;
  const float eps = node.attr_float("epsilon", 1e-12f);
  std::vector<float> s(static_cast<size_t>(h));
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in[0].as<float>() + r * h;
    const float* sk = in[1].as<float>() + (r % skip_rows) * h;
    for (int64_t j = 0; j < h; ++j) s[j] = x[j] + sk[j] + (bias ? bias[j] : 0.0f);
    if (sum_out) std::copy(s.begin(), s.end(), sum_out + r * h);
    layer_norm_row(s.data(), h, eps, in[2].as<float>(), beta, out[0].as<float>() + r * h);
  }
  return Status::Ok();
}

// ---- EmbedLayerNormalization -----------------------------------------------------------------

Status infer_EmbedLayerNormalization(const Node& node, std::span<const TensorInfo* const> in,
                                     std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 7, 9));
  MOSS_RETURN_IF_ERROR(require_f32(node, in));
  const auto& ids = in[0]->shape;
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kInt32}, "input_ids"));
  if (ids.size() != 2) return invalid_argument("{}: input_ids must be [batch, sequence]", node.label());
  const auto& we = in[2]->shape;
  if (we.size() != 2) return invalid_argument("{}: word_embedding must be [vocab, hidden]", node.label());
  const int64_t h = we[1];
  auto table = [&](size_t i, const char* what) -> Status {
    if (!in[i]) return Status::Ok();
    if (in[i]->shape.size() != 2 || in[i]->shape[1] != h) {
      return invalid_argument("{}: {} must be [rows, {}]", node.label(), what, h);
    }
    return Status::Ok();
  };
  MOSS_RETURN_IF_ERROR(table(3, "position_embedding"));
  MOSS_RETURN_IF_ERROR(table(4, "segment_embedding"));
  if (!in[3]) return invalid_argument("{}: position_embedding is required", node.label());
  if ((in[1] != nullptr) != (in[4] != nullptr)) {
    return invalid_argument("{}: segment_ids and segment_embedding go together", node.label());
  }
  MOSS_RETURN_IF_ERROR(require_vector(node, in[5], h, "gamma"));
  MOSS_RETURN_IF_ERROR(require_vector(node, in[6], h, "beta"));
  for (size_t i : {size_t{1}, size_t{7}}) {
    if (i < in.size() && in[i]) {
      MOSS_RETURN_IF_ERROR(require_dtype(node, *in[i], {DType::kInt32}, i == 1 ? "segment_ids" : "mask"));
      if (in[i]->shape != ids) return invalid_argument("{}: input {} must have input_ids' shape", node.label(), i);
    }
  }
  if (in.size() > 8 && in[8]) {
    MOSS_RETURN_IF_ERROR(require_dtype(node, *in[8], {DType::kInt32}, "position_ids"));
    const auto& p = in[8]->shape;
    if (p.size() != 2 || (p[0] != ids[0] && p[0] != 1) || p[1] != ids[1]) {
      return invalid_argument("{}: position_ids must be [batch or 1, sequence]", node.label());
    }
  }
  if (node.outputs.size() > 2 && node.outputs[2] != kNoValue) {
    out.resize(3);
    out[2] = TensorInfo{DType::kFloat32, {ids[0], ids[1], h}, nullptr};
  } else {
    out.resize(2);
  }
  out[0] = TensorInfo{DType::kFloat32, {ids[0], ids[1], h}, nullptr};
  out[1] = TensorInfo{DType::kInt32, {ids[0]}, nullptr};
  return Status::Ok();
}

Status run_EmbedLayerNormalization(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t B = in[0].shape[0], S = in[0].shape[1], h = in[2].shape[1];
  const int32_t* ids = in[0].as<int32_t>();
  const int32_t* seg = in[1].data ? in[1].as<int32_t>() : nullptr;
  const int32_t* mask = in.size() > 7 && in[7].data ? in[7].as<int32_t>() : nullptr;
  const int32_t* pos_ids = in.size() > 8 && in[8].data ? in[8].as<int32_t>() : nullptr;
  const bool pos_batched = pos_ids && in[8].shape[0] == B;
  const float eps = node.attr_float("epsilon", 1e-12f);
  float* emb_sum = out.size() > 2 && out[2].data ? out[2].as<float>() : nullptr;
  std::vector<float> s(static_cast<size_t>(h));
  auto row = [&](const View& t, int64_t i, const char* what) -> Result<const float*> {
    if (i < 0 || i >= t.shape[0]) {
      return invalid_argument("{}: {} index {} is out of range [0, {})", node.label(), what, i, t.shape[0]);
    }
    return t.as<float>() + i * h;
  };
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < S; ++t) {
      const int64_t k = b * S + t;
      MOSS_ASSIGN_OR_RETURN(const float* w, row(in[2], ids[k], "word"));
      const int64_t p = pos_ids ? pos_ids[pos_batched ? k : t] : t;
      MOSS_ASSIGN_OR_RETURN(const float* pe, row(in[3], p, "position"));
      const float* se = nullptr;
      if (seg) {
        MOSS_ASSIGN_OR_RETURN(se, row(in[4], seg[k], "segment"));
      }
      for (int64_t j = 0; j < h; ++j) s[j] = w[j] + pe[j] + (se ? se[j] : 0.0f);
      if (emb_sum) std::copy(s.begin(), s.end(), emb_sum + k * h);
      layer_norm_row(s.data(), h, eps, in[5].as<float>(), in[6].as<float>(), out[0].as<float>() + k * h);
    }
    // mask_index: the number of ones in the mask row (ONNX Runtime's CPU kernel), 0 without mask.
    out[1].as<int32_t>()[b] = mask ? static_cast<int32_t>(std::count(mask + b * S, mask + (b + 1) * S, 1)) : 0;
  }
  return Status::Ok();
}

// ---- attention -------------------------------------------------------------------------------

// Scaled dot-product attention over heads for q [B,S,N*hq], k [B,L,N*hq], v [B,L,N*hv] (row
// strides given), with an additive mask per (batch, query, key) built by `mask_at`.
struct AttentionShape {
  int64_t B, S, L, heads, hq, hv;
  float scale;
  bool causal;
};

template <typename MaskFn>
void attention(const AttentionShape& a, const float* q, int64_t q_stride, const float* k, int64_t k_stride,
               const float* v, int64_t v_stride, MaskFn mask_at, float* y) {
  std::vector<float> p(static_cast<size_t>(a.L));
  for (int64_t b = 0; b < a.B; ++b)
    for (int64_t n = 0; n < a.heads; ++n)
      for (int64_t i = 0; i < a.S; ++i) {
        const float* qi = q + (b * a.S + i) * q_stride + n * a.hq;
        float mx = -INFINITY;
        for (int64_t j = 0; j < a.L; ++j) {
          const float* kj = k + (b * a.L + j) * k_stride + n * a.hq;
          float dot = 0;
          for (int64_t d = 0; d < a.hq; ++d) dot += qi[d] * kj[d];
          p[j] = dot * a.scale + mask_at(b, i, j);
          mx = std::max(mx, p[j]);
        }
        float sum = 0;
        for (int64_t j = 0; j < a.L; ++j) sum += p[j] = std::exp(p[j] - mx);
        float* yi = y + (b * a.S + i) * a.heads * a.hv + n * a.hv;
        std::fill(yi, yi + a.hv, 0.0f);
        for (int64_t j = 0; j < a.L; ++j) {
          const float w = p[j] / sum;
          const float* vj = v + (b * a.L + j) * v_stride + n * a.hv;
          for (int64_t d = 0; d < a.hv; ++d) yi[d] += w * vj[d];
        }
      }
}

// Key-padding mask forms of Attention's mask_index and MultiHeadAttention's key_padding_mask:
// [B] (valid key count: keys at or after it are masked), [2B] (end, then start positions),
// [B, L] (1 keep / 0 mask), [B, S, L]. Returns the additive term.
struct KeyMask {
  const int32_t* data = nullptr;
  std::vector<int64_t> shape;
  int64_t B = 0;
  float filter = -10000.0f;
  float at(int64_t b, int64_t i, int64_t j, int64_t S, int64_t L) const {
    if (!data) return 0;
    if (shape.size() == 1) {
      const int64_t end = data[b];
      const int64_t start = shape[0] == 2 * B ? data[B + b] : 0;
      return j >= end || j < start ? filter : 0.0f;
    }
    if (shape.size() == 2) return data[b * L + j] == 0 ? filter : 0.0f;
    return data[(b * S + i) * L + j] == 0 ? filter : 0.0f;
  }
};

// The mask of Attention (input 3) and MultiHeadAttention (input 4), when given.
KeyMask key_mask_of(const Node& node, std::span<const View> in, size_t index, int64_t B) {
  KeyMask m;
  if (in.size() > index && in[index].data) {
    m.data = in[index].as<int32_t>();
    m.shape.assign(in[index].shape.begin(), in[index].shape.end());
  }
  m.B = B;
  m.filter = node.attr_float("mask_filter_value", -10000.0f);
  return m;
}

Status check_key_mask(const Node& node, const TensorInfo* m, int64_t B, int64_t S, int64_t L) {
  if (!m) return Status::Ok();
  MOSS_RETURN_IF_ERROR(require_dtype(node, *m, {DType::kInt32}, "mask"));
  const auto& s = m->shape;
  const bool ok = (s.size() == 1 && (s[0] == B || s[0] == 2 * B)) || (s.size() == 2 && s[0] == B && s[1] == L) ||
                  (s.size() == 3 && s[0] == B && s[1] == S && s[2] == L);
  if (!ok) {
    return unimplemented("{}: mask shape {} is not supported ([B], [2B], [B, L], [B, S, L])", node.label(),
                         shape_to_string(s));
  }
  return Status::Ok();
}

Result<int64_t> heads_of(const Node& node, int64_t hidden) {
  const int64_t heads = node.attr_int("num_heads", 0);
  if (heads < 1 || hidden % heads != 0) {
    return invalid_argument("{}: num_heads {} must be >= 1 and divide the hidden size {}", node.label(), heads, hidden);
  }
  return heads;
}

Status infer_Attention(const Node& node, std::span<const TensorInfo* const> in, std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 7));
  MOSS_RETURN_IF_ERROR(require_f32(node, in));
  MOSS_RETURN_IF_ERROR(require_absent(node, in, 4, {"past", "attention_bias", "past_sequence_length"}));
  if (node.outputs.size() > 1 && node.outputs[1] != kNoValue) {
    return unimplemented("{}: output 'present' (key/value cache) is not supported", node.label());
  }
  if (node.attr_int("do_rotary", 0) != 0) return unimplemented("{}: do_rotary is not supported", node.label());
  if (node.attr("qkv_hidden_sizes")) return unimplemented("{}: qkv_hidden_sizes is not supported", node.label());
  const auto& x = in[0]->shape;
  const auto& w = in[1]->shape;
  if (x.size() != 3) return invalid_argument("{}: input must be [batch, sequence, input_hidden]", node.label());
  if (w.size() != 2 || w[0] != x[2] || w[1] % 3 != 0) {
    return invalid_argument("{}: weights must be [input_hidden, 3 * hidden], got {}", node.label(), shape_to_string(w));
  }
  MOSS_RETURN_IF_ERROR(require_vector(node, in.size() > 2 ? in[2] : nullptr, w[1], "bias"));
  MOSS_ASSIGN_OR_RETURN(int64_t heads, heads_of(node, w[1] / 3));
  (void)heads;
  MOSS_RETURN_IF_ERROR(check_key_mask(node, in.size() > 3 ? in[3] : nullptr, x[0], x[1], x[1]));
  return set_out(out, DType::kFloat32, {x[0], x[1], w[1] / 3});
}

Status run_Attention(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t B = in[0].shape[0], S = in[0].shape[1], In = in[0].shape[2], H3 = in[1].shape[1], H = H3 / 3;
  // qkv = x W + b: [B*S, 3H].
  std::vector<float> qkv(static_cast<size_t>(B * S * H3));
  const float* X = in[0].as<float>();
  const float* W = in[1].as<float>();
  const float* bias = in.size() > 2 && in[2].data ? in[2].as<float>() : nullptr;
  for (int64_t r = 0; r < B * S; ++r) {
    float* o = qkv.data() + r * H3;
    for (int64_t c = 0; c < H3; ++c) o[c] = bias ? bias[c] : 0.0f;
    for (int64_t k = 0; k < In; ++k) {
      const float xv = X[r * In + k];
      const float* wr = W + k * H3;
      for (int64_t c = 0; c < H3; ++c) o[c] += xv * wr[c];
    }
  }
  const int64_t heads = node.attr_int("num_heads", 1);
  AttentionShape a{B, S, S, heads, H / heads, H / heads, 0, node.attr_int("unidirectional", 0) != 0};
  a.scale = node.attr_float("scale", 1.0f / std::sqrt(static_cast<float>(a.hq)));
  const KeyMask m = key_mask_of(node, in, 3, B);
  auto mask_at = [&](int64_t b, int64_t i, int64_t j) {
    return m.at(b, i, j, S, S) + (a.causal && j > i ? m.filter : 0.0f);
  };
  attention(a, qkv.data(), H3, qkv.data() + H, H3, qkv.data() + 2 * H, H3, mask_at, out[0].as<float>());
  return Status::Ok();
}

Status infer_MultiHeadAttention(const Node& node, std::span<const TensorInfo* const> in,
                                std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, 10));
  MOSS_RETURN_IF_ERROR(require_f32(node, in));
  MOSS_RETURN_IF_ERROR(require_absent(node, in, 5, {"attention_bias", "past_key", "past_value", "past_sequence_length", "cache_indirection"}));
  for (size_t i = 1; i < node.outputs.size(); ++i) {
    if (node.outputs[i] != kNoValue) return unimplemented("{}: present key/value outputs are not supported", node.label());
  }
  const auto& q = in[0]->shape;
  const auto& k = in[1]->shape;
  const auto& v = in[2]->shape;
  if (q.size() != 3 || k.size() != 3 || v.size() != 3 || k[0] != q[0] || v[0] != q[0] || v[1] != k[1] || k[2] != q[2]) {
    return unimplemented("{}: query/key/value must be [B, S, H], [B, L, H], [B, L, Hv] (packed and cached forms are "
                         "not supported)", node.label());
  }
  MOSS_RETURN_IF_ERROR(require_vector(node, in.size() > 3 ? in[3] : nullptr, q[2] + k[2] + v[2], "bias"));
  MOSS_ASSIGN_OR_RETURN(int64_t heads, heads_of(node, q[2]));
  if (v[2] % heads != 0) return invalid_argument("{}: num_heads must divide the value hidden size", node.label());
  MOSS_RETURN_IF_ERROR(check_key_mask(node, in.size() > 4 ? in[4] : nullptr, q[0], q[1], k[1]));
  return set_out(out, DType::kFloat32, {q[0], q[1], v[2]});
}

Status run_MultiHeadAttention(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t B = in[0].shape[0], S = in[0].shape[1], H = in[0].shape[2], L = in[1].shape[1],
                Hv = in[2].shape[2];
  const float* bias = in.size() > 3 && in[3].data ? in[3].as<float>() : nullptr;
  auto with_bias = [&](const View& t, int64_t off, int64_t width) {
    std::vector<float> r(t.as<float>(), t.as<float>() + t.numel);
    if (bias) {
      for (size_t i = 0; i < r.size(); ++i) r[i] += bias[off + static_cast<int64_t>(i) % width];
    }
    return r;
  };
  const auto q = with_bias(in[0], 0, H), k = with_bias(in[1], H, H), v = with_bias(in[2], 2 * H, Hv);
  const int64_t heads = node.attr_int("num_heads", 1);
  AttentionShape a{B, S, L, heads, H / heads, Hv / heads, 0, node.attr_int("unidirectional", 0) != 0};
  a.scale = node.attr_float("scale", 1.0f / std::sqrt(static_cast<float>(a.hq)));
  const KeyMask m = key_mask_of(node, in, 4, B);
  auto mask_at = [&](int64_t b, int64_t i, int64_t j) {
    return m.at(b, i, j, S, L) + (a.causal && j > i + (L - S) ? m.filter : 0.0f);
  };
  attention(a, q.data(), H, k.data(), H, v.data(), Hv, mask_at, out[0].as<float>());
  return Status::Ok();
}

// ---- FusedMatMul -----------------------------------------------------------------------------

Status infer_FusedMatMul(const Node& node, std::span<const TensorInfo* const> in, std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kFloat32}, "A"));
  MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[1], "B"));
  if (node.attr_int("transBatchA", 0) != 0 || node.attr_int("transBatchB", 0) != 0) {
    return unimplemented("{}: transBatchA/transBatchB are not supported", node.label());
  }
  auto a = in[0]->shape, b = in[1]->shape;
  if (a.size() < 2 || b.size() < 2) return unimplemented("{}: inputs must have rank >= 2", node.label());
  if (node.attr_int("transA", 0)) std::swap(a[a.size() - 2], a[a.size() - 1]);
  if (node.attr_int("transB", 0)) std::swap(b[b.size() - 2], b[b.size() - 1]);
  if (a.back() != b[b.size() - 2]) {
    return invalid_argument("{}: inner dimensions differ ({} vs {})", node.label(), a.back(), b[b.size() - 2]);
  }
  MOSS_ASSIGN_OR_RETURN(auto batch, broadcast_shapes(node, std::span(a).first(a.size() - 2), std::span(b).first(b.size() - 2)));
  batch.push_back(a[a.size() - 2]);
  batch.push_back(b.back());
  return set_out(out, DType::kFloat32, std::move(batch));
}

Status run_FusedMatMul(const Node& node, std::span<const View> in, std::span<const View> out) {
  const auto as = in[0].shape, bs = in[1].shape, ys = out[0].shape;
  const bool ta = node.attr_int("transA", 0) != 0, tb = node.attr_int("transB", 0) != 0;
  const float alpha = node.attr_float("alpha", 1.0f);
  const int64_t M = ys[ys.size() - 2], N = ys.back(), K = ta ? as[as.size() - 2] : as.back();
  const std::vector<int64_t> batch(ys.begin(), ys.end() - 2);
  const auto sa = broadcast_strides(as.first(as.size() - 2), batch);
  const auto sb = broadcast_strides(bs.first(bs.size() - 2), batch);
  const int64_t nb = numel_of(batch);
  std::vector<int64_t> idx(batch.size(), 0);
  const float* A = in[0].as<float>();
  const float* Bm = in[1].as<float>();
  float* Y = out[0].as<float>();
  for (int64_t p = 0; p < nb; ++p) {
    int64_t oa = 0, ob = 0;
    for (size_t d = 0; d < batch.size(); ++d) {
      oa += idx[d] * sa[d];
      ob += idx[d] * sb[d];
    }
    const float* a = A + oa * M * K;
    const float* b = Bm + ob * K * N;
    float* y = Y + p * M * N;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        float acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += (ta ? a[k * M + i] : a[i * K + k]) * (tb ? b[j * K + k] : b[k * N + j]);
        y[i * N + j] = alpha * acc;
      }
    for (size_t d = batch.size(); d-- > 0;) {
      if (++idx[d] < batch[d]) break;
      idx[d] = 0;
    }
  }
  return Status::Ok();
}

// ---- float16 ------------------------------------------------------------------------------------
// Models optimized for half precision carry these operators on float16. They run the float32
// kernels: float16 inputs widened, float outputs rounded back to nearest even (ONNX Runtime's
// half-precision kernels also accumulate in float). Mixing float16 and float32 is refused.

bool is_half(DType d) { return d == DType::kFloat16; }

template <InferFn Infer>
Status infer_half_too(const Node& node, std::span<const TensorInfo* const> in, std::vector<TensorInfo>& out) {
  bool half = false, single = false;
  for (const TensorInfo* t : in) {
    half |= t && is_half(t->dtype);
    single |= t && t->dtype == DType::kFloat32;
  }
  if (!half) return Infer(node, in, out);
  if (single) return invalid_argument("{}: float16 and float32 inputs are mixed", node.label());
  std::vector<TensorInfo> widened(in.size());
  std::vector<const TensorInfo*> ptrs(in.size(), nullptr);
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i]) continue;
    widened[i] = *in[i];
    if (is_half(in[i]->dtype)) {
      widened[i].dtype = DType::kFloat32;
      widened[i].value.reset();  // shapes are all infer() reads of float inputs
    }
    ptrs[i] = &widened[i];
  }
  MOSS_RETURN_IF_ERROR(Infer(node, ptrs, out));
  for (TensorInfo& o : out) {
    if (o.dtype == DType::kFloat32) o.dtype = DType::kFloat16;
  }
  return Status::Ok();
}

template <RunFn Run>
Status run_half_too(const Node& node, std::span<const View> in, std::span<const View> out) {
  bool half = false;
  for (const View& v : in) half |= v.present() && is_half(v.dtype);
  if (!half) return Run(node, in, out);
  std::vector<std::vector<float>> buffers;
  buffers.reserve(in.size() + out.size());  // views below point into these
  auto widen = [&](const View& v, bool copy) {
    buffers.emplace_back(static_cast<size_t>(v.numel));
    if (copy) {
      const Float16* h = v.as<Float16>();
      for (int64_t i = 0; i < v.numel; ++i) buffers.back()[static_cast<size_t>(i)] = static_cast<float>(h[i]);
    }
    return View{DType::kFloat32, v.shape, reinterpret_cast<uint8_t*>(buffers.back().data()), v.numel};
  };
  std::vector<View> win(in.begin(), in.end()), wout(out.begin(), out.end());
  for (View& v : win) {
    if (v.present() && is_half(v.dtype)) v = widen(v, true);
  }
  for (View& v : wout) {
    if (v.present() && is_half(v.dtype)) v = widen(v, false);
  }
  MOSS_RETURN_IF_ERROR(Run(node, win, wout));
  for (size_t o = 0; o < out.size(); ++o) {
    if (!out[o].present() || !is_half(out[o].dtype)) continue;
    const float* f = wout[o].as<float>();
    Float16* h = out[o].as<Float16>();
    for (int64_t i = 0; i < out[o].numel; ++i) h[i] = Float16(f[i]);
  }
  return Status::Ok();
}

template <InferFn Infer, RunFn Run>
OpKernel half_too(const char* op) {
  return {op, infer_half_too<Infer>, run_half_too<Run>};
}

}  // namespace

std::vector<OpKernel> contrib_kernels() {
  return {half_too<infer_gelu_family, run_gelu_family>("Gelu"),
          half_too<infer_gelu_family, run_gelu_family>("FastGelu"),
          half_too<infer_gelu_family, run_gelu_family>("BiasGelu"),
          half_too<infer_gelu_family, run_gelu_family>("QuickGelu"),
          half_too<infer_SkipLayerNormalization, run_SkipLayerNormalization>("SkipLayerNormalization"),
          half_too<infer_EmbedLayerNormalization, run_EmbedLayerNormalization>("EmbedLayerNormalization"),
          half_too<infer_Attention, run_Attention>("Attention"),
          half_too<infer_MultiHeadAttention, run_MultiHeadAttention>("MultiHeadAttention"),
          half_too<infer_FusedMatMul, run_FusedMatMul>("FusedMatMul")};
}

}  // namespace moss::engine::ref
