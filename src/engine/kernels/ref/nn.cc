// Gemm, MatMul, BatchNormalization, LayerNormalization, Softmax.
#include "engine/kernels/ref/broadcast.h"
#include "engine/kernels/ref/ref_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace moss::engine::ref {
namespace {

// C[M,N] (+)= A[M,K] * B[K,N]; A element (i,k) at A[i*as_i + k*as_k], B likewise.
// The k-then-j order keeps the inner loop contiguous in B and C when B is not transposed.
void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t as_i, int64_t as_k,
          const float* B, int64_t bs_k, int64_t bs_j, float* C, float alpha) {
  if (bs_j == 1) {
    for (int64_t i = 0; i < M; ++i) {
      float* c = C + i * N;
      for (int64_t k = 0; k < K; ++k) {
        const float a = alpha * A[i * as_i + k * as_k];
        const float* b = B + k * bs_k;
        for (int64_t j = 0; j < N; ++j) c[j] += a * b[j];
      }
    }
  } else {
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = 0; j < N; ++j) {
        float s = 0;
        for (int64_t k = 0; k < K; ++k) s += A[i * as_i + k * as_k] * B[j * bs_j + k * bs_k];
        C[i * N + j] += alpha * s;
      }
    }
  }
}

Status infer_Gemm(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, node.opset < 11 ? 3 : 2, 3));
  for (const TensorInfo* t : in) {
    if (t) MOSS_RETURN_IF_ERROR(require_dtype(node, *t, {DType::kFloat32}, "input"));
  }
  const auto& a = in[0]->shape;
  const auto& b = in[1]->shape;
  if (a.size() != 2 || b.size() != 2) return invalid_argument("{}: A and B must be 2-D", node.label());
  const bool ta = node.attr_int("transA", 0) != 0, tb = node.attr_int("transB", 0) != 0;
  const int64_t M = ta ? a[1] : a[0], K = ta ? a[0] : a[1];
  const int64_t K2 = tb ? b[1] : b[0], N = tb ? b[0] : b[1];
  if (K != K2) return invalid_argument("{}: inner dimensions {} and {} differ", node.label(), K, K2);
  if (in.size() > 2 && in[2]) {
    std::vector<int64_t> mn{M, N};
    MOSS_ASSIGN_OR_RETURN(auto bc, broadcast_shapes(node, in[2]->shape, mn));
    if (bc != mn) return invalid_argument("{}: C {} does not broadcast to [{}, {}]", node.label(), shape_to_string(in[2]->shape), M, N);
  }
  out.resize(1);
  out[0].shape = {M, N};
  return Status::Ok();
}

Status run_Gemm(const Node& node, std::span<const View> in, std::span<const View> out) {
  const bool ta = node.attr_int("transA", 0) != 0, tb = node.attr_int("transB", 0) != 0;
  const float alpha = node.attr_float("alpha", 1.0f), beta = node.attr_float("beta", 1.0f);
  const auto a = in[0].shape, b = in[1].shape;
  const int64_t M = out[0].shape[0], N = out[0].shape[1], K = ta ? a[0] : a[1];
  float* C = out[0].as<float>();
  if (in.size() > 2 && in[2].data && beta != 0.0f) {
    auto st = broadcast_strides(in[2].shape, out[0].shape);
    const float* c = in[2].as<float>();
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * N + j] = beta * c[i * st[0] + j * st[1]];
  } else {
    std::fill(C, C + M * N, 0.0f);
  }
  gemm(M, N, K, in[0].as<float>(), ta ? 1 : a[1], ta ? a[1] : 1, in[1].as<float>(),
       tb ? 1 : b[1], tb ? b[1] : 1, C, alpha);
  return Status::Ok();
}

Status infer_MatMul(const Node& node, std::span<const TensorInfo* const> in,
                    std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kFloat32}, "A"));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[1], {DType::kFloat32}, "B"));
  auto a = in[0]->shape, b = in[1]->shape;
  if (a.empty() || b.empty()) return invalid_argument("{}: scalar operands", node.label());
  const bool a1 = a.size() == 1, b1 = b.size() == 1;
  if (a1) a.insert(a.begin(), 1);
  if (b1) b.push_back(1);
  if (a.back() != b[b.size() - 2]) {
    return invalid_argument("{}: shapes {} and {} do not multiply", node.label(),
                            shape_to_string(in[0]->shape), shape_to_string(in[1]->shape));
  }
  std::span<const int64_t> ab(a.data(), a.size() - 2), bb(b.data(), b.size() - 2);
  MOSS_ASSIGN_OR_RETURN(auto shape, broadcast_shapes(node, ab, bb));
  if (!a1) shape.push_back(a[a.size() - 2]);
  if (!b1) shape.push_back(b.back());
  out.resize(1);
  out[0].shape = std::move(shape);
  return Status::Ok();
}

Status run_MatMul(const Node&, std::span<const View> in, std::span<const View> out) {
  // 1-D operands are promoted to matrices ([1,K] and [K,1]) as numpy does.
  std::vector<int64_t> a, b;
  if (in[0].shape.size() == 1) a.push_back(1);
  for (int64_t d : in[0].shape) a.push_back(d);
  for (int64_t d : in[1].shape) b.push_back(d);
  if (in[1].shape.size() == 1) b.push_back(1);
  const int64_t M = a[a.size() - 2], K = a.back(), N = b.back();
  std::vector<int64_t> batch_a(a.begin(), a.end() - 2), batch_b(b.begin(), b.end() - 2);
  const size_t r = std::max(batch_a.size(), batch_b.size());
  std::vector<int64_t> batch(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - batch_a.size() ? 1 : batch_a[i - (r - batch_a.size())];
    int64_t db = i < r - batch_b.size() ? 1 : batch_b[i - (r - batch_b.size())];
    batch[i] = std::max(da, db);
  }
  auto sa = broadcast_strides(batch_a, batch);
  auto sb = broadcast_strides(batch_b, batch);
  float* C = out[0].as<float>();
  std::fill(C, C + out[0].numel, 0.0f);
  const float* A = in[0].as<float>();
  const float* B = in[1].as<float>();
  const int64_t nb = numel_of(batch);
  std::vector<int64_t> idx(r, 0);
  for (int64_t t = 0; t < nb; ++t) {
    int64_t oa = 0, ob = 0;
    for (size_t d = 0; d < r; ++d) {
      oa += idx[d] * sa[d];
      ob += idx[d] * sb[d];
    }
    gemm(M, N, K, A + oa * M * K, K, 1, B + ob * K * N, N, 1, C + t * M * N, 1.0f);
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < batch[d]) break;
      idx[d] = 0;
    }
  }
  return Status::Ok();
}

// ---- BatchNormalization ---------------------------------------------------------------------

// training_mode=1 (opset 14+) normalizes with the batch's own statistics (mean and biased
// variance over every axis but the channel) and, when asked, outputs the updated running
// statistics: running = input_running * momentum + batch * (1 - momentum), as the spec's reference.
bool bn_training(const Node& node) { return node.opset >= 14 && node.attr_int("training_mode", 0) != 0; }

Status infer_BatchNormalization(const Node& node, std::span<const TensorInfo* const> in,
                                std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 5, 5));
  if (node.attr_int("training_mode", 0) != 0 && node.opset < 14) {
    return invalid_argument("{}: training_mode exists from opset 14", node.label());
  }
  if (node.opset < 9 && node.attr_int("spatial", 1) != 1) {
    return unimplemented("{}: spatial=0 is not supported", node.label());
  }
  const bool training = bn_training(node);
  for (size_t i = 1; i < node.outputs.size(); ++i) {
    if (node.outputs[i] == kNoValue) continue;
    if (!training) {
      return unimplemented("{}: output {} (statistics) exists only with training_mode=1 (opset 14+)",
                           node.label(), i);
    }
    if (i > 2) return invalid_argument("{}: at most 3 outputs in training mode", node.label());
  }
  for (const TensorInfo* t : in) MOSS_RETURN_IF_ERROR(require_dtype(node, *t, {DType::kFloat32}, "input"));
  const auto& x = in[0]->shape;
  if (x.size() < 2) return invalid_argument("{}: input rank < 2", node.label());
  for (size_t i = 1; i < 5; ++i) {
    if (in[i]->numel() != x[1]) return invalid_argument("{}: input {} must have {} elements", node.label(), i, x[1]);
  }
  out.resize(training ? std::max<size_t>(1, node.outputs.size()) : 1);
  out[0].shape = x;
  for (size_t i = 1; i < out.size(); ++i) out[i].shape = {x[1]};
  return Status::Ok();
}

Status run_BatchNormalization(const Node& node, std::span<const View> in, std::span<const View> out) {
  const float eps = node.attr_float("epsilon", 1e-5f);
  const auto x = in[0].shape;
  const int64_t N = x[0], C = x[1], sp = C && N ? in[0].numel / (N * C) : 0;
  const float *X = in[0].as<float>(), *S = in[1].as<float>(), *B = in[2].as<float>();
  const float *Mn = in[3].as<float>(), *V = in[4].as<float>();
  float* Y = out[0].as<float>();
  const bool training = bn_training(node);
  const float momentum = node.attr_float("momentum", 0.9f);
  for (int64_t c = 0; c < C; ++c) {
    float mean = Mn[c], var = V[c];
    if (training) {
      // Two passes in double: the batch may be large and the variance is a small difference.
      double sum = 0, sq = 0;
      for (int64_t n = 0; n < N; ++n) {
        const float* xs = X + (n * C + c) * sp;
        for (int64_t i = 0; i < sp; ++i) sum += xs[i];
      }
      const double count = static_cast<double>(N * sp), m = count > 0 ? sum / count : 0.0;
      for (int64_t n = 0; n < N; ++n) {
        const float* xs = X + (n * C + c) * sp;
        for (int64_t i = 0; i < sp; ++i) sq += (xs[i] - m) * (xs[i] - m);
      }
      mean = static_cast<float>(m);
      var = static_cast<float>(count > 0 ? sq / count : 0.0);
      if (out.size() > 1 && out[1].data) out[1].as<float>()[c] = Mn[c] * momentum + mean * (1 - momentum);
      if (out.size() > 2 && out[2].data) out[2].as<float>()[c] = V[c] * momentum + var * (1 - momentum);
    }
    const float k = S[c] / std::sqrt(var + eps);
    const float b = B[c] - mean * k;
    for (int64_t n = 0; n < N; ++n) {
      const float* xs = X + (n * C + c) * sp;
      float* ys = Y + (n * C + c) * sp;
      for (int64_t i = 0; i < sp; ++i) ys[i] = xs[i] * k + b;
    }
  }
  return Status::Ok();
}

// ---- LayerNormalization ---------------------------------------------------------------------

Status infer_LayerNormalization(const Node& node, std::span<const TensorInfo* const> in,
                                std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 3));
  for (const TensorInfo* t : in) {
    if (t) MOSS_RETURN_IF_ERROR(require_dtype(node, *t, {DType::kFloat32}, "input"));
  }
  const auto& x = in[0]->shape;
  MOSS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", -1), static_cast<int64_t>(x.size())));
  std::span<const int64_t> inner(x.data() + axis, x.size() - axis);
  for (size_t i = 1; i < in.size(); ++i) {
    if (!in[i]) continue;
    MOSS_ASSIGN_OR_RETURN(auto bc, broadcast_shapes(node, in[i]->shape, inner));
    if (bc.size() != inner.size() || !std::equal(bc.begin(), bc.end(), inner.begin())) {
      return invalid_argument("{}: scale/bias {} do not broadcast to {}", node.label(), shape_to_string(in[i]->shape), shape_to_string(inner));
    }
  }
  out.resize(std::max<size_t>(1, node.outputs.size()));
  out[0].shape = x;
  std::vector<int64_t> stat(x.begin(), x.begin() + axis);
  stat.resize(x.size(), 1);
  for (size_t i = 1; i < out.size(); ++i) out[i].shape = stat;
  return Status::Ok();
}

Status run_LayerNormalization(const Node& node, std::span<const View> in, std::span<const View> out) {
  const auto x = in[0].shape;
  int64_t axis = node.attr_int("axis", -1);
  if (axis < 0) axis += static_cast<int64_t>(x.size());
  const float eps = node.attr_float("epsilon", 1e-5f);
  std::span<const int64_t> inner_shape(x.data() + axis, x.size() - axis);
  const int64_t inner = numel_of(inner_shape);
  const int64_t outer = inner ? in[0].numel / inner : 0;
  // Expand scale and bias to the normalized shape once (they are usually exactly [hidden]).
  auto expand = [&](const View& v, float def) {
    std::vector<float> e(inner, def);
    if (!v.data) return e;
    auto st = broadcast_strides(v.shape, inner_shape);
    std::vector<int64_t> idx(inner_shape.size(), 0);
    for (int64_t i = 0; i < inner; ++i) {
      int64_t off = 0;
      for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * st[d];
      e[i] = v.as<float>()[off];
      for (size_t d = idx.size(); d-- > 0;) {
        if (++idx[d] < inner_shape[d]) break;
        idx[d] = 0;
      }
    }
    return e;
  };
  const auto scale = expand(in[1], 1.0f);
  const auto bias = expand(in.size() > 2 ? in[2] : View{}, 0.0f);
  const float* X = in[0].as<float>();
  float* Y = out[0].as<float>();
  for (int64_t o = 0; o < outer; ++o) {
    const float* xr = X + o * inner;
    float* yr = Y + o * inner;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < inner; ++i) mean += xr[i];
    mean /= static_cast<double>(inner);
    for (int64_t i = 0; i < inner; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= static_cast<double>(inner);
    const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
    const float m = static_cast<float>(mean);
    for (int64_t i = 0; i < inner; ++i) yr[i] = (xr[i] - m) * inv * scale[i] + bias[i];
    if (out.size() > 1 && out[1].data) out[1].as<float>()[o] = m;
    if (out.size() > 2 && out[2].data) out[2].as<float>()[o] = inv;
  }
  return Status::Ok();
}

// ---- Softmax --------------------------------------------------------------------------------

Status infer_Softmax(const Node& node, std::span<const TensorInfo* const> in,
                     std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kFloat32}, "input"));
  const int64_t r = static_cast<int64_t>(in[0]->shape.size());
  MOSS_RETURN_IF_ERROR(normalize_axis(node, node.attr_int("axis", node.opset < 13 ? 1 : -1), std::max<int64_t>(r, 1)).status());
  out.resize(1);
  out[0].shape = in[0]->shape;
  return Status::Ok();
}

Status run_Softmax(const Node& node, std::span<const View> in, std::span<const View> out) {
  const auto x = in[0].shape;
  const int64_t r = static_cast<int64_t>(x.size());
  int64_t axis = node.attr_int("axis", node.opset < 13 ? 1 : -1);
  if (axis < 0) axis += r;
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t i = 0; i < r; ++i) {
    if (i < axis) outer *= x[i];
    else if (i == axis || node.opset < 13) n *= x[i];
    else inner *= x[i];
  }
  const float* X = in[0].as<float>();
  float* Y = out[0].as<float>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < inner; ++j) {
      const float* xs = X + o * n * inner + j;
      float* ys = Y + o * n * inner + j;
      float mx = -INFINITY;
      for (int64_t i = 0; i < n; ++i) mx = std::max(mx, xs[i * inner]);
      float sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        ys[i * inner] = std::exp(xs[i * inner] - mx);
        sum += ys[i * inner];
      }
      const float inv = 1.0f / sum;
      for (int64_t i = 0; i < n; ++i) ys[i * inner] *= inv;
    }
  }
  return Status::Ok();
}

}  // namespace

std::vector<OpKernel> nn_kernels() {
  return {
      {"Gemm", infer_Gemm, run_Gemm},
      {"MatMul", infer_MatMul, run_MatMul},
      {"BatchNormalization", infer_BatchNormalization, run_BatchNormalization},
      {"LayerNormalization", infer_LayerNormalization, run_LayerNormalization},
      {"Softmax", infer_Softmax, run_Softmax},
  };
}

}  // namespace moss::engine::ref
