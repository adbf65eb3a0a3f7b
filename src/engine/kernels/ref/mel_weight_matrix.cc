// MelWeightMatrix (opset 17): the [dft_length / 2 + 1, num_mel_bins] matrix of triangular filters
// that maps a onesided spectrum to mel bins, computed as ONNX's reference does (the mel range is
// split into num_mel_bins + 2 steps; band edges are floored to DFT bins).
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <algorithm>
#include <cmath>

namespace moss::engine::ref {
namespace {

constexpr int64_t kMaxBins = int64_t{1} << 16;

Status infer_MelWeightMatrix(const Node& node, std::span<const TensorInfo* const> in,
                             std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 5, 5));
  MOSS_ASSIGN_OR_RETURN(int64_t mel_bins, const_int_scalar(node, in[0], "num_mel_bins"));
  MOSS_ASSIGN_OR_RETURN(int64_t dft_length, const_int_scalar(node, in[1], "dft_length"));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[2], {DType::kInt32, DType::kInt64}, "sample_rate"));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[3], "lower_edge_hertz"));
  MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[3], *in[4], "upper_edge_hertz"));
  for (size_t i = 2; i < 5; ++i) {
    if (numel_of(in[i]->shape) != 1) return invalid_argument("{}: input {} must be a scalar", node.label(), i);
  }
  if (mel_bins < 1 || mel_bins > kMaxBins || dft_length < 1 || dft_length > 2 * kMaxBins) {
    return invalid_argument("{}: num_mel_bins must be in [1, 65536] and dft_length in [1, 131072]", node.label());
  }
  MOSS_ASSIGN_OR_RETURN(DType dt, dtype_from_onnx_number(node, node.attr_int("output_datatype", 1)));
  if (dt == DType::kBool) return invalid_argument("{}: output_datatype must be numeric", node.label());
  return set_out(out, dt, {dft_length / 2 + 1, mel_bins});
}

double scalar_value(const View& v) {
  switch (v.dtype) {
    case DType::kInt32: return v.as<int32_t>()[0];
    case DType::kInt64: return static_cast<double>(v.as<int64_t>()[0]);
    case DType::kFloat64: return v.as<double>()[0];
    case DType::kFloat16: return static_cast<float>(v.as<Float16>()[0]);
    case DType::kBFloat16: return static_cast<float>(v.as<BFloat16>()[0]);
    default: return v.as<float>()[0];
  }
}

Status run_MelWeightMatrix(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t spectrum_bins = out[0].shape[0], mel_bins = out[0].shape[1];
  const int64_t dft_length = static_cast<int64_t>(scalar_value(in[1]));
  const double sample_rate = scalar_value(in[2]);
  const double lo = scalar_value(in[3]), hi = scalar_value(in[4]);
  if (!(sample_rate > 0) || !std::isfinite(lo) || !std::isfinite(hi) || lo < 0 || hi < lo) {
    return invalid_argument("{}: needs sample_rate > 0 and 0 <= lower_edge_hertz <= upper_edge_hertz",
                            node.label());
  }
  const double lo_mel = 2595 * std::log10(1 + lo / 700), hi_mel = 2595 * std::log10(1 + hi / 700);
  const double step = (hi_mel - lo_mel) / static_cast<double>(mel_bins + 2);
  std::vector<int64_t> edge(static_cast<size_t>(mel_bins + 2));
  for (int64_t i = 0; i < mel_bins + 2; ++i) {
    const double hz = 700 * (std::pow(10.0, (static_cast<double>(i) * step + lo_mel) / 2595) - 1);
    const double bin = std::floor(static_cast<double>(dft_length + 1) * hz / sample_rate);
    if (!(std::fabs(bin) < 1e15)) return invalid_argument("{}: band edge out of range", node.label());
    edge[static_cast<size_t>(i)] = static_cast<int64_t>(bin);
  }
  std::vector<double> w(static_cast<size_t>(spectrum_bins * mel_bins), 0.0);
  auto set = [&](int64_t j, int64_t i, double v) {
    if (j >= 0 && j < spectrum_bins) w[static_cast<size_t>(j * mel_bins + i)] = v;
  };
  for (int64_t i = 0; i < mel_bins; ++i) {
    const int64_t left = edge[i], center = edge[i + 1], right = edge[i + 2];
    if (center == left) {
      set(center, i, 1);
    } else {
      for (int64_t j = std::max<int64_t>(left, 0); j <= std::min(center, spectrum_bins - 1); ++j) set(j, i, static_cast<double>(j - left) / static_cast<double>(center - left));
    }
    if (right > center) {
      for (int64_t j = std::max<int64_t>(center, 0); j < std::min(right, spectrum_bins); ++j) set(j, i, static_cast<double>(right - j) / static_cast<double>(right - center));
    }
  }
  return dispatch_numeric(node, out[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    T* y = out[0].as<T>();
    for (size_t k = 0; k < w.size(); ++k) y[k] = T(static_cast<C>(w[k]));
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> mel_weight_matrix_kernels() {
  return {{"MelWeightMatrix", infer_MelWeightMatrix, run_MelWeightMatrix, false, 0b11}};
}

}  // namespace moss::engine::ref
