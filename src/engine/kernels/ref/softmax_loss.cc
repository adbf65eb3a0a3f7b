// LogSoftmax and Hardmax (opset < 13: the input coerced to 2-D at `axis`; from 13: one axis), and
// the losses built on them: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (weights,
// ignore_index, reduction none/sum/mean, optional log_prob output). Float types; 16-bit floats are
// computed in float.
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <algorithm>
#include <cmath>

namespace moss::engine::ref {
namespace {

int64_t softmax_axis(const Node& node) { return node.attr_int("axis", node.opset < 13 ? 1 : -1); }

Status infer_softmax_like(const Node& node, std::span<const TensorInfo* const> in,
                          std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "input"));
  const int64_t r = static_cast<int64_t>(in[0]->shape.size());
  MOSS_RETURN_IF_ERROR(normalize_axis(node, softmax_axis(node), std::max<int64_t>(r, 1)).status());
  return set_out(out, in[0]->dtype, in[0]->shape);
}

// [outer, n, inner] for the softmax axis, with the pre-13 coercion (all dims from axis flattened).
AxisSplit softmax_split(const Node& node, std::span<const int64_t> shape) {
  const int64_t r = static_cast<int64_t>(shape.size());
  int64_t axis = softmax_axis(node);
  if (axis < 0) axis += r;
  if (node.opset >= 13) return split_at(shape, axis);
  AxisSplit s;
  for (int64_t i = 0; i < r; ++i) (i < axis ? s.outer : s.n) *= shape[i];
  return s;
}

// log-softmax of n values with stride `inner`, in the compute type.
template <typename T, typename C>
void log_softmax_row(const T* x, T* y, int64_t n, int64_t inner) {
  C mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, static_cast<C>(x[i * inner]));
  C sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<C>(x[i * inner]) - mx);
  const C lse = mx + std::log(sum);
  for (int64_t i = 0; i < n; ++i) y[i * inner] = T(static_cast<C>(x[i * inner]) - lse);
}

Status run_LogSoftmax(const Node& node, std::span<const View> in, std::span<const View> out) {
  const AxisSplit s = softmax_split(node, in[0].shape);
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    for (int64_t o = 0; o < s.outer; ++o) {
      for (int64_t j = 0; j < s.inner; ++j) {
        const int64_t base = o * s.n * s.inner + j;
        log_softmax_row<T, compute_t<T>>(x + base, y + base, s.n, s.inner);
      }
    }
    return Status::Ok();
  });
}

Status run_Hardmax(const Node& node, std::span<const View> in, std::span<const View> out) {
  const AxisSplit s = softmax_split(node, in[0].shape);
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    for (int64_t o = 0; o < s.outer; ++o) {
      for (int64_t j = 0; j < s.inner; ++j) {
        const int64_t base = o * s.n * s.inner + j;
        int64_t best = 0;
        for (int64_t i = 0; i < s.n; ++i) {
          y[base + i * s.inner] = T(C(0));
          if (static_cast<C>(x[base + i * s.inner]) > static_cast<C>(x[base + best * s.inner])) best = i;
        }
        if (s.n > 0) y[base + best * s.inner] = T(C(1));
      }
    }
    return Status::Ok();
  });
}

// ---- losses ---------------------------------------------------------------------------------

Status check_loss_reduction(const Node& node) {
  const std::string r = node.attr_string("reduction", "mean");
  if (r != "none" && r != "sum" && r != "mean") {
    return invalid_argument("{}: reduction must be none, sum or mean, got '{}'", node.label(), r);
  }
  return Status::Ok();
}

// Shared by both losses: input [N, C, d...], target [N, d...] integer, weight [C].
Status infer_loss(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out, bool log_prob_output) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 3));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "input"));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[1], {DType::kInt32, DType::kInt64}, "target"));
  MOSS_RETURN_IF_ERROR(check_loss_reduction(node));
  const auto& x = in[0]->shape;
  const auto& t = in[1]->shape;
  if (x.size() < 2 || t.size() != x.size() - 1 || t[0] != x[0] ||
      !std::equal(t.begin() + 1, t.end(), x.begin() + 2)) {
    return invalid_argument("{}: target shape {} does not match input shape {}", node.label(),
                            shape_to_string(t), shape_to_string(x));
  }
  if (in.size() > 2 && in[2]) {
    MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[2], "weight"));
    if (in[2]->shape.size() != 1 || in[2]->shape[0] != x[1]) {
      return invalid_argument("{}: weight must have shape [C] = [{}]", node.label(), x[1]);
    }
  }
  out.resize(log_prob_output ? 2 : 1);
  out[0].dtype = in[0]->dtype;
  if (node.attr_string("reduction", "mean") == "none") out[0].shape = t;
  if (log_prob_output) {
    out[1].dtype = in[0]->dtype;
    out[1].shape = x;
  }
  return Status::Ok();
}

Status infer_NegativeLogLikelihoodLoss(const Node& node, std::span<const TensorInfo* const> in,
                                       std::vector<TensorInfo>& out) {
  return infer_loss(node, in, out, false);
}

Status infer_SoftmaxCrossEntropyLoss(const Node& node, std::span<const TensorInfo* const> in,
                                     std::vector<TensorInfo>& out) {
  return infer_loss(node, in, out, true);
}

// loss = -logp[n, target, d] * weight[target], reduced. logp is [N, C, D] (D = prod of d...).
template <typename T, typename TI>
Status nll(const Node& node, const T* logp, const TI* target, const T* weight, int64_t N,
           int64_t C, int64_t D, const View& out) {
  using A = double;
  const std::string reduction = node.attr_string("reduction", "mean");
  const bool has_ignore = node.attr("ignore_index") != nullptr;
  const int64_t ignore = node.attr_int("ignore_index", 0);
  T* y = out.as<T>();
  A total = 0, wsum = 0;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t d = 0; d < D; ++d) {
      const int64_t c = static_cast<int64_t>(target[n * D + d]);
      A loss = 0, w = 0;
      if (!(has_ignore && c == ignore)) {
        if (c < 0 || c >= C) {
          return invalid_argument("{}: target {} is out of range [0, {})", node.label(), c, C);
        }
        w = weight ? static_cast<A>(static_cast<compute_t<T>>(weight[c])) : A(1);
        loss = -static_cast<A>(static_cast<compute_t<T>>(logp[(n * C + c) * D + d])) * w;
      }
      if (reduction == "none") y[n * D + d] = T(static_cast<compute_t<T>>(loss));
      total += loss;
      wsum += w;
    }
  }
  if (reduction == "sum") y[0] = T(static_cast<compute_t<T>>(total));
  if (reduction == "mean") y[0] = T(static_cast<compute_t<T>>(wsum == 0 ? A(0) : total / wsum));
  return Status::Ok();
}

Status run_loss(const Node& node, std::span<const View> in, std::span<const View> out) {
  const bool softmax = node.op_type == "SoftmaxCrossEntropyLoss";
  const auto x = in[0].shape;
  const int64_t N = x[0], C = x[1];
  const int64_t D = N * C == 0 ? 0 : in[0].numel / (N * C);
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* logp = in[0].as<T>();
    std::vector<T> tmp;
    if (softmax) {
      T* lp = out.size() > 1 && out[1].data ? out[1].as<T>() : nullptr;
      if (!lp) {
        tmp.resize(static_cast<size_t>(in[0].numel));
        lp = tmp.data();
      }
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t d = 0; d < D; ++d) {
          log_softmax_row<T, compute_t<T>>(logp + n * C * D + d, lp + n * C * D + d, C, D);
        }
      }
      logp = lp;
    }
    const T* w = in.size() > 2 && in[2].data ? in[2].as<T>() : nullptr;
    if (in[1].dtype == DType::kInt32) return nll<T>(node, logp, in[1].as<int32_t>(), w, N, C, D, out[0]);
    return nll<T>(node, logp, in[1].as<int64_t>(), w, N, C, D, out[0]);
  });
}

}  // namespace

std::vector<OpKernel> softmax_loss_kernels() {
  return {
      {"LogSoftmax", infer_softmax_like, run_LogSoftmax},
      {"Hardmax", infer_softmax_like, run_Hardmax},
      {"NegativeLogLikelihoodLoss", infer_NegativeLogLikelihoodLoss, run_loss},
      {"SoftmaxCrossEntropyLoss", infer_SoftmaxCrossEntropyLoss, run_loss},
  };
}

}  // namespace moss::engine::ref
