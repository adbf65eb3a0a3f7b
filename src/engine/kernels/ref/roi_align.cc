// RoiAlign (opset 10, 16): avg and max pooling of bilinear samples over regions of interest,
// coordinate_transformation_mode half_pixel (opset 16 default) and output_half_pixel (opset 10's
// only behaviour). Follows ONNX Runtime's CPU kernel, including its max mode (the maximum of the
// four weighted corner terms of each sample, not of the interpolated values) and its sampling rule
// (a sample more than one pixel outside the map contributes 0).
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <algorithm>
#include <cmath>

namespace moss::engine::ref {
namespace {

struct RoiSpec {
  int64_t out_h = 1, out_w = 1, sampling = 0;
  float spatial_scale = 1;
  bool half_pixel = false, max_mode = false;
};

Result<RoiSpec> roi_spec(const Node& node) {
  RoiSpec s;
  s.out_h = node.attr_int("output_height", 1);
  s.out_w = node.attr_int("output_width", 1);
  s.sampling = node.attr_int("sampling_ratio", 0);
  s.spatial_scale = node.attr_float("spatial_scale", 1.0f);
  constexpr int64_t kMaxOut = int64_t{1} << 16;
  if (s.out_h < 1 || s.out_w < 1 || s.out_h > kMaxOut || s.out_w > kMaxOut) {
    return invalid_argument("{}: output_height and output_width must be in [1, 65536]", node.label());
  }
  if (s.sampling < 0 || s.sampling > 1024) {
    return invalid_argument("{}: sampling_ratio must be in [0, 1024], got {}", node.label(), s.sampling);
  }
  if (!std::isfinite(s.spatial_scale)) return invalid_argument("{}: spatial_scale must be finite", node.label());
  const std::string mode = node.attr_string("mode", "avg");
  if (mode != "avg" && mode != "max") {
    return invalid_argument("{}: mode '{}' is not valid (avg, max)", node.label(), mode);
  }
  s.max_mode = mode == "max";
  const std::string coord =
      node.attr_string("coordinate_transformation_mode", node.opset >= 16 ? "half_pixel" : "output_half_pixel");
  if (coord != "half_pixel" && coord != "output_half_pixel") {
    return invalid_argument("{}: coordinate_transformation_mode '{}' is not valid (half_pixel, output_half_pixel)",
                            node.label(), coord);
  }
  s.half_pixel = coord == "half_pixel";
  return s;
}

Status infer_RoiAlign(const Node& node, std::span<const TensorInfo* const> in,
                      std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, 3));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "X"));
  MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[1], "rois"));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[2], {DType::kInt64}, "batch_indices"));
  MOSS_ASSIGN_OR_RETURN(RoiSpec s, roi_spec(node));
  const auto& x = in[0]->shape;
  const auto& rois = in[1]->shape;
  const auto& bi = in[2]->shape;
  if (x.size() != 4) return invalid_argument("{}: X must be 4-D [N, C, H, W]", node.label());
  if (rois.size() != 2 || rois[1] != 4) return invalid_argument("{}: rois must be [num_rois, 4]", node.label());
  if (bi.size() != 1 || bi[0] != rois[0]) {
    return invalid_argument("{}: batch_indices must be [num_rois] ({})", node.label(), rois[0]);
  }
  return set_out(out, in[0]->dtype, {rois[0], x[1], s.out_h, s.out_w});
}

// One bilinear sample: four source offsets and weights (all zero when the sample is outside).
struct Sample {
  int64_t pos[4] = {0, 0, 0, 0};
  float w[4] = {0, 0, 0, 0};
};

Sample bilinear_sample(float y, float x, int64_t height, int64_t width) {
  Sample s;
  if (y < -1.0f || y > static_cast<float>(height) || x < -1.0f || x > static_cast<float>(width)) return s;
  y = std::max(y, 0.0f);
  x = std::max(x, 0.0f);
  int64_t y_lo = static_cast<int64_t>(y), x_lo = static_cast<int64_t>(x), y_hi, x_hi;
  if (y_lo >= height - 1) {
    y_hi = y_lo = height - 1;
    y = static_cast<float>(y_lo);
  } else {
    y_hi = y_lo + 1;
  }
  if (x_lo >= width - 1) {
    x_hi = x_lo = width - 1;
    x = static_cast<float>(x_lo);
  } else {
    x_hi = x_lo + 1;
  }
  const float ly = y - static_cast<float>(y_lo), lx = x - static_cast<float>(x_lo);
  const float hy = 1 - ly, hx = 1 - lx;
  s.pos[0] = y_lo * width + x_lo;
  s.pos[1] = y_lo * width + x_hi;
  s.pos[2] = y_hi * width + x_lo;
  s.pos[3] = y_hi * width + x_hi;
  s.w[0] = hy * hx;
  s.w[1] = hy * lx;
  s.w[2] = ly * hx;
  s.w[3] = ly * lx;
  return s;
}

template <typename T>
Status roi_align(const Node& node, const RoiSpec& s, std::span<const View> in, const View& out) {
  using C = compute_t<T>;
  const auto x = in[0].shape;
  const int64_t N = x[0], channels = x[1], height = x[2], width = x[3];
  const int64_t num_rois = in[1].shape[0];
  const T* X = in[0].as<T>();
  const T* R = in[1].as<T>();
  const int64_t* B = in[2].as<int64_t>();
  T* Y = out.as<T>();
  const float offset = s.half_pixel ? 0.5f : 0.0f;
  std::vector<Sample> samples;
  for (int64_t n = 0; n < num_rois; ++n) {
    const int64_t b = B[n];
    if (b < 0 || b >= N) {
      return invalid_argument("{}: batch index {} is out of range [0, {})", node.label(), b, N);
    }
    const T* roi = R + n * 4;
    const float x1 = static_cast<float>(static_cast<C>(roi[0])) * s.spatial_scale - offset;
    const float y1 = static_cast<float>(static_cast<C>(roi[1])) * s.spatial_scale - offset;
    const float x2 = static_cast<float>(static_cast<C>(roi[2])) * s.spatial_scale - offset;
    const float y2 = static_cast<float>(static_cast<C>(roi[3])) * s.spatial_scale - offset;
    float roi_w = x2 - x1, roi_h = y2 - y1;
    if (!s.half_pixel) {  // legacy: force malformed regions to 1x1
      roi_w = std::max(roi_w, 1.0f);
      roi_h = std::max(roi_h, 1.0f);
    }
    if (!std::isfinite(roi_w) || !std::isfinite(roi_h)) {
      return invalid_argument("{}: region {} has non-finite coordinates", node.label(), n);
    }
    const float bin_h = roi_h / static_cast<float>(s.out_h), bin_w = roi_w / static_cast<float>(s.out_w);
    // Samples per bin: sampling_ratio, or adaptive ceil(roi / output) bounded so a huge region
    // from request data cannot make the loop unbounded.
    constexpr int64_t kMaxGrid = 1024;
    const int64_t grid_h = s.sampling > 0 ? s.sampling
                                          : std::clamp<int64_t>(static_cast<int64_t>(std::ceil(roi_h / static_cast<float>(s.out_h))), 0, kMaxGrid);
    const int64_t grid_w = s.sampling > 0 ? s.sampling
                                          : std::clamp<int64_t>(static_cast<int64_t>(std::ceil(roi_w / static_cast<float>(s.out_w))), 0, kMaxGrid);
    if (grid_h * grid_w > (int64_t{1} << 26) / (s.out_h * s.out_w)) {
      return invalid_argument("{}: region {} needs too many samples ({}x{} per bin)", node.label(), n,
                              grid_h, grid_w);
    }
    const float count = static_cast<float>(std::max<int64_t>(grid_h * grid_w, 1));
    samples.clear();
    for (int64_t ph = 0; ph < s.out_h; ++ph)
      for (int64_t pw = 0; pw < s.out_w; ++pw)
        for (int64_t iy = 0; iy < grid_h; ++iy) {
          const float yy = y1 + static_cast<float>(ph) * bin_h +
                           (static_cast<float>(iy) + 0.5f) * bin_h / static_cast<float>(grid_h);
          for (int64_t ix = 0; ix < grid_w; ++ix) {
            const float xx = x1 + static_cast<float>(pw) * bin_w +
                             (static_cast<float>(ix) + 0.5f) * bin_w / static_cast<float>(grid_w);
            samples.push_back(bilinear_sample(yy, xx, height, width));
          }
        }
    const int64_t per_bin = grid_h * grid_w;
    for (int64_t c = 0; c < channels; ++c) {
      const T* plane = X + (b * channels + c) * height * width;
      T* y = Y + (n * channels + c) * s.out_h * s.out_w;
      for (int64_t bin = 0; bin < s.out_h * s.out_w; ++bin) {
        float acc = 0;
        for (int64_t k = 0; k < per_bin; ++k) {
          const Sample& sm = samples[static_cast<size_t>(bin * per_bin + k)];
          float v[4];
          for (int j = 0; j < 4; ++j) v[j] = sm.w[j] * static_cast<float>(static_cast<C>(plane[sm.pos[j]]));
          if (s.max_mode) {
            const float m = std::max(std::max(v[0], v[1]), std::max(v[2], v[3]));
            acc = k == 0 ? m : std::max(acc, m);
          } else {
            acc += v[0] + v[1] + v[2] + v[3];
          }
        }
        y[bin] = T(static_cast<C>(s.max_mode ? acc : acc / count));
      }
    }
  }
  return Status::Ok();
}

Status run_RoiAlign(const Node& node, std::span<const View> in, std::span<const View> out) {
  MOSS_ASSIGN_OR_RETURN(RoiSpec s, roi_spec(node));
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    return roi_align<decltype(tag)>(node, s, in, out[0]);
  });
}

}  // namespace

std::vector<OpKernel> roi_align_kernels() { return {{"RoiAlign", infer_RoiAlign, run_RoiAlign}}; }

}  // namespace moss::engine::ref
