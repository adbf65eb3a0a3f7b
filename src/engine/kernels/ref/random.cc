// Random generators: RandomNormal, RandomUniform, RandomNormalLike, RandomUniformLike (opset 1),
// Multinomial (7), Bernoulli (15). Like ONNX Runtime's CPU kernels: std::default_random_engine
// seeded with the 'seed' attribute (converted to uint32), std::normal/uniform_real_distribution
// in the output type, Multinomial by inverse CDF over exp(logit - max). Unlike ONNX Runtime,
// whose generator lives in the session and advances from run to run, a seeded node here restarts
// from its seed on every run (kernels are stateless; so a seeded node is constant and folds). A
// node without a seed draws a fresh seed per run (OpKernel::random keeps it from being folded).
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace moss::engine::ref {
namespace {

std::default_random_engine make_engine(const Node& node) {
  if (node.attr("seed")) {
    return std::default_random_engine(static_cast<uint32_t>(static_cast<int64_t>(node.attr_float("seed", 0))));
  }
  std::random_device rd;
  return std::default_random_engine(rd());
}

// Output type: 'dtype' when given, else `fallback` (the input's type for the *Like operators).
Result<DType> output_dtype(const Node& node, DType fallback) {
  if (!node.attr("dtype")) return fallback;
  return dtype_from_onnx_number(node, node.attr_int("dtype", 1));
}

bool is_like(const Node& node) { return node.op_type.ends_with("Like"); }
bool is_normal(const Node& node) { return node.op_type.starts_with("RandomNormal"); }

Status infer_random(const Node& node, std::span<const TensorInfo* const> in,
                    std::vector<TensorInfo>& out) {
  std::vector<int64_t> shape;
  DType dt = DType::kFloat32;
  if (is_like(node)) {
    MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
    shape = in[0]->shape;
    MOSS_ASSIGN_OR_RETURN(dt, output_dtype(node, in[0]->dtype));
  } else {
    MOSS_RETURN_IF_ERROR(require_inputs(node, in, 0, 0));
    if (!node.attr("shape")) return invalid_argument("{}: attribute 'shape' is required", node.label());
    shape = node.attr_ints("shape");
    for (int64_t d : shape) {
      if (d < 0) return invalid_argument("{}: shape has a negative dimension", node.label());
    }
    MOSS_ASSIGN_OR_RETURN(dt, output_dtype(node, DType::kFloat32));
  }
  if (!is_float_dtype(dt)) {
    return invalid_argument("{}: dtype must be a float type, got {}", node.label(), dtype_name(dt));
  }
  const float a = node.attr_float(is_normal(node) ? "mean" : "low", 0.0f);
  const float b = node.attr_float(is_normal(node) ? "scale" : "high", 1.0f);
  if (!std::isfinite(a) || !std::isfinite(b) || (is_normal(node) ? b < 0 : b < a)) {
    return invalid_argument("{}: {} must be finite and {}", node.label(),
                            is_normal(node) ? "mean and scale" : "low and high",
                            is_normal(node) ? "scale >= 0" : "low <= high");
  }
  return set_out(out, dt, std::move(shape));
}

Status run_random(const Node& node, std::span<const View>, std::span<const View> out) {
  auto engine = make_engine(node);
  const bool normal = is_normal(node);
  const float a = node.attr_float(normal ? "mean" : "low", 0.0f);
  const float b = node.attr_float(normal ? "scale" : "high", 1.0f);
  return dispatch_float(node, out[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    T* y = out[0].as<T>();
    if (normal) {
      std::normal_distribution<C> dist(static_cast<C>(a), static_cast<C>(b));
      for (int64_t i = 0; i < out[0].numel; ++i) y[i] = T(dist(engine));
    } else {
      std::uniform_real_distribution<C> dist(static_cast<C>(a), static_cast<C>(b));
      for (int64_t i = 0; i < out[0].numel; ++i) y[i] = T(dist(engine));
    }
    return Status::Ok();
  });
}

// ---- Bernoulli ------------------------------------------------------------------------------

Status infer_Bernoulli(const Node& node, std::span<const TensorInfo* const> in,
                       std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "input"));
  MOSS_ASSIGN_OR_RETURN(DType dt, output_dtype(node, in[0]->dtype));
  return set_out(out, dt, in[0]->shape);
}

Status run_Bernoulli(const Node& node, std::span<const View> in, std::span<const View> out) {
  auto engine = make_engine(node);
  std::uniform_real_distribution<float> dist(0.0f, 1.0f);
  std::vector<uint8_t> draws(static_cast<size_t>(in[0].numel));
  MOSS_RETURN_IF_ERROR(dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* p = in[0].as<T>();
    for (int64_t i = 0; i < in[0].numel; ++i) {
      const double prob = static_cast<double>(static_cast<C>(p[i]));
      if (!(prob >= 0 && prob <= 1)) {
        return invalid_argument("{}: probability {} is outside [0, 1]", node.label(), prob);
      }
      draws[static_cast<size_t>(i)] = dist(engine) < prob ? 1 : 0;
    }
    return Status::Ok();
  }));
  return dispatch_all(node, out[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    T* y = out[0].as<T>();
    for (int64_t i = 0; i < out[0].numel; ++i) y[i] = T(static_cast<C>(draws[static_cast<size_t>(i)]));
    return Status::Ok();
  });
}

// ---- Multinomial ----------------------------------------------------------------------------

Status infer_Multinomial(const Node& node, std::span<const TensorInfo* const> in,
                         std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "input"));
  if (in[0]->shape.size() != 2) {
    return invalid_argument("{}: input must be [batch_size, class_size]", node.label());
  }
  MOSS_ASSIGN_OR_RETURN(DType dt, dtype_from_onnx_number(node, node.attr_int("dtype", 6)));
  if (dt != DType::kInt32 && dt != DType::kInt64) {
    return invalid_argument("{}: dtype must be int32 or int64, got {}", node.label(), dtype_name(dt));
  }
  const int64_t samples = node.attr_int("sample_size", 1);
  if (samples < 1) return invalid_argument("{}: sample_size must be >= 1", node.label());
  return set_out(out, dt, {in[0]->shape[0], samples});
}

Status run_Multinomial(const Node& node, std::span<const View> in, std::span<const View> out) {
  auto engine = make_engine(node);
  std::uniform_real_distribution<double> dist(0.0, 1.0);
  const int64_t batch = in[0].shape[0], classes = in[0].shape[1], samples = out[0].shape[1];
  std::vector<double> cdf(static_cast<size_t>(classes));
  std::vector<int64_t> picks(static_cast<size_t>(out[0].numel));
  MOSS_RETURN_IF_ERROR(dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    for (int64_t b = 0; b < batch; ++b) {
      const T* row = in[0].as<T>() + b * classes;
      // Unnormalised CDF of exp(logit - max) over the finite logits.
      double mx = std::numeric_limits<double>::lowest();
      for (int64_t j = 0; j < classes; ++j) {
        const double v = static_cast<double>(static_cast<C>(row[j]));
        if (std::isfinite(v)) mx = std::max(mx, v);
      }
      double total = 0;
      for (int64_t j = 0; j < classes; ++j) {
        const double v = static_cast<double>(static_cast<C>(row[j]));
        if (std::isfinite(v)) total += std::exp(v - mx);
        cdf[static_cast<size_t>(j)] = total;
      }
      for (int64_t s = 0; s < samples; ++s) {
        const double target = dist(engine) * total;
        picks[static_cast<size_t>(b * samples + s)] = std::upper_bound(cdf.begin(), cdf.end(), target) - cdf.begin();
      }
    }
    return Status::Ok();
  }));
  for (int64_t i = 0; i < out[0].numel; ++i) {
    if (out[0].dtype == DType::kInt32) out[0].as<int32_t>()[i] = static_cast<int32_t>(picks[static_cast<size_t>(i)]);
    else out[0].as<int64_t>()[i] = picks[static_cast<size_t>(i)];
  }
  return Status::Ok();
}

OpKernel random_kernel(const char* op, InferFn infer, RunFn run) {
  OpKernel k{op, infer, run};
  k.random = true;
  return k;
}

}  // namespace

std::vector<OpKernel> random_kernels() {
  return {random_kernel("RandomNormal", infer_random, run_random),
          random_kernel("RandomUniform", infer_random, run_random),
          random_kernel("RandomNormalLike", infer_random, run_random),
          random_kernel("RandomUniformLike", infer_random, run_random),
          random_kernel("Bernoulli", infer_Bernoulli, run_Bernoulli),
          random_kernel("Multinomial", infer_Multinomial, run_Multinomial)};
}

}  // namespace moss::engine::ref
