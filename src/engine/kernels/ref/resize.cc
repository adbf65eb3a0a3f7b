// Resize (opset 10, 11, 13, 18, 19): nearest and (n-)linear modes with every
// coordinate_transformation_mode and nearest_mode. Per-dimension source tables are computed once
// per call; the output loop then only combines table entries.
#include "engine/kernels/ref/ref_kernels.h"

#include <algorithm>
#include <cmath>

namespace moss::engine::ref {
namespace {

struct ResizeSpec {
  std::vector<int64_t> out;
  std::vector<float> scale;            // per dim, as used by the coordinate transform
  std::vector<float> out_len;          // per dim: in*scale when scales are given (not floored)
  std::vector<float> roi;              // 2*r, tf_crop_and_resize only
  std::string mode, coord, nearest;
  float extrapolation = 0;
};

Result<ResizeSpec> resize_spec(const Node& node, std::span<const TensorInfo* const> in) {
  ResizeSpec sp;
  const auto& x = in[0]->shape;
  const size_t r = x.size();
  sp.mode = node.attr_string("mode", "nearest");
  if (sp.mode != "nearest" && sp.mode != "linear") {
    return unimplemented("{}: mode '{}' is not supported (nearest, linear)", node.label(), sp.mode);
  }
  if (node.attr_int("antialias", 0) != 0) return unimplemented("{}: antialias is not supported", node.label());
  if (node.opset < 11) {
    sp.coord = "asymmetric";
    sp.nearest = "floor";
  } else {
    sp.coord = node.attr_string("coordinate_transformation_mode", "half_pixel");
    sp.nearest = node.attr_string("nearest_mode", "round_prefer_floor");
  }
  static const char* kCoords[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                                  "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
  if (std::none_of(std::begin(kCoords), std::end(kCoords), [&](const char* c) { return sp.coord == c; })) {
    return unimplemented("{}: coordinate_transformation_mode '{}' is not supported", node.label(), sp.coord);
  }
  if (sp.nearest != "round_prefer_floor" && sp.nearest != "round_prefer_ceil" && sp.nearest != "floor" && sp.nearest != "ceil") {
    return unimplemented("{}: nearest_mode '{}' is not supported", node.label(), sp.nearest);
  }
  sp.extrapolation = node.attr_float("extrapolation_value", 0.0f);
  std::vector<float> scales;
  std::vector<int64_t> sizes;
  if (node.opset < 11) {
    MOSS_ASSIGN_OR_RETURN(scales, const_floats(node, in.size() > 1 ? in[1] : nullptr, "scales"));
  } else {
    MOSS_ASSIGN_OR_RETURN(sp.roi, const_floats(node, in.size() > 1 ? in[1] : nullptr, "roi"));
    MOSS_ASSIGN_OR_RETURN(scales, const_floats(node, in.size() > 2 ? in[2] : nullptr, "scales"));
    MOSS_ASSIGN_OR_RETURN(sizes, const_ints(node, in.size() > 3 ? in[3] : nullptr, "sizes"));
  }
  std::vector<int64_t> axes = node.attr_ints("axes");
  if (axes.empty()) {
    for (size_t i = 0; i < r; ++i) axes.push_back(static_cast<int64_t>(i));
  }
  for (auto& a : axes) {
    MOSS_ASSIGN_OR_RETURN(a, normalize_axis(node, a, static_cast<int64_t>(r)));
  }
  if (scales.empty() == sizes.empty()) {
    return invalid_argument("{}: exactly one of scales and sizes must be given", node.label());
  }
  if (!scales.empty() && scales.size() != axes.size()) return invalid_argument("{}: scales has wrong length", node.label());
  if (!sizes.empty() && sizes.size() != axes.size()) return invalid_argument("{}: sizes has wrong length", node.label());
  if (sp.coord == "tf_crop_and_resize") {
    if (sp.roi.size() != 2 * axes.size()) return invalid_argument("{}: roi has wrong length", node.label());
    std::vector<float> full(2 * r, 0.0f);
    for (size_t i = 0; i < r; ++i) full[r + i] = 1.0f;
    for (size_t i = 0; i < axes.size(); ++i) {
      full[axes[i]] = sp.roi[i];
      full[r + axes[i]] = sp.roi[axes.size() + i];
    }
    sp.roi = full;
  }
  sp.out = x;
  sp.scale.assign(r, 1.0f);
  sp.out_len.assign(r, 0.0f);
  for (size_t i = 0; i < r; ++i) sp.out_len[i] = static_cast<float>(x[i]);
  if (!scales.empty()) {
    for (size_t i = 0; i < axes.size(); ++i) {
      const float s = scales[i];
      if (!(s > 0)) return invalid_argument("{}: scales must be positive", node.label());
      const int64_t a = axes[i];
      float len = static_cast<float>(x[a]);
      if (sp.coord == "tf_crop_and_resize") len *= sp.roi[r + a] - sp.roi[a];
      if (!(len * s < 1e12f)) return invalid_argument("{}: scale {} is too large", node.label(), s);
      sp.out[a] = static_cast<int64_t>(std::floor(len * s));
      sp.scale[a] = s;
      sp.out_len[a] = static_cast<float>(x[a]) * s;
    }
  } else {
    const std::string policy = node.attr_string("keep_aspect_ratio_policy", "stretch");
    if (policy != "stretch" && policy != "not_larger" && policy != "not_smaller") {
      return unimplemented("{}: keep_aspect_ratio_policy '{}' is not supported", node.label(), policy);
    }
    for (size_t i = 0; i < axes.size(); ++i) {
      if (sizes[i] < 0) return invalid_argument("{}: negative size", node.label());
    }
    if (policy == "stretch") {
      for (size_t i = 0; i < axes.size(); ++i) {
        const int64_t a = axes[i];
        sp.out[a] = sizes[i];
        sp.scale[a] = x[a] ? static_cast<float>(sizes[i]) / static_cast<float>(x[a]) : 1.0f;
        sp.out_len[a] = static_cast<float>(sizes[i]);
      }
    } else {
      float s = policy == "not_larger" ? INFINITY : 0.0f;
      for (size_t i = 0; i < axes.size(); ++i) {
        const float si = static_cast<float>(sizes[i]) / static_cast<float>(std::max<int64_t>(1, x[axes[i]]));
        s = policy == "not_larger" ? std::min(s, si) : std::max(s, si);
      }
      for (int64_t a : axes) {
        sp.scale[a] = s;
        if (!(s * static_cast<float>(x[a]) < 1e12f)) return invalid_argument("{}: sizes too large", node.label());
        sp.out[a] = static_cast<int64_t>(std::round(s * static_cast<float>(x[a])));
        sp.out_len[a] = static_cast<float>(sp.out[a]);
      }
    }
  }
  for (size_t i = 0; i < r; ++i) {
    if (x[i] == 0 && sp.out[i] > 0) return invalid_argument("{}: cannot resize an empty dimension", node.label());
    if (!(sp.scale[i] > 0) || !std::isfinite(sp.scale[i])) return invalid_argument("{}: invalid scale", node.label());
  }
  return sp;
}

Status infer_Resize(const Node& node, std::span<const TensorInfo* const> in,
                    std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, node.opset < 11 ? 2 : 1, node.opset < 11 ? 2 : 4));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kFloat32}, "X"));
  MOSS_ASSIGN_OR_RETURN(auto sp, resize_spec(node, in));
  out.resize(1);
  out[0].shape = sp.out;
  return Status::Ok();
}

// Source coordinate of output index o along one dimension.
float source_coord(const ResizeSpec& sp, size_t d, size_t r, int64_t o, int64_t in_len, float out_len, bool& outside) {
  const float s = sp.scale[d];
  const float x = static_cast<float>(o);
  outside = false;
  if (sp.coord == "half_pixel") return (x + 0.5f) / s - 0.5f;
  if (sp.coord == "half_pixel_symmetric") {
    const float adj = out_len / (s * static_cast<float>(in_len));
    const float center = static_cast<float>(in_len) / 2.0f;
    return center * (1 - adj) + (x + 0.5f) / s - 0.5f;
  }
  if (sp.coord == "pytorch_half_pixel") return out_len > 1 ? (x + 0.5f) / s - 0.5f : 0.0f;
  if (sp.coord == "align_corners") {
    return out_len == 1 ? 0.0f : x * static_cast<float>(in_len - 1) / (out_len - 1);
  }
  if (sp.coord == "asymmetric") return x / s;
  if (sp.coord == "tf_half_pixel_for_nn") return (x + 0.5f) / s;
  // tf_crop_and_resize
  const float b = sp.roi[d], e = sp.roi[r + d];
  const float len = static_cast<float>(in_len - 1);
  float c = out_len > 1 ? b * len + x * (e - b) * len / (out_len - 1)
                        : 0.5f * (b + e) * len;
  outside = c < 0 || c > len;
  return c;
}

int64_t nearest_index(const std::string& mode, float c) {
  if (mode == "floor") return static_cast<int64_t>(std::floor(c));
  if (mode == "ceil") return static_cast<int64_t>(std::ceil(c));
  const float f = std::floor(c);
  if (c - f == 0.5f) return static_cast<int64_t>(mode == "round_prefer_floor" ? f : f + 1);
  return static_cast<int64_t>(std::round(c));
}

Status run_Resize(const Node& node, std::span<const View> in, std::span<const View> out) {
  std::vector<TensorInfo> infos(in.size());
  std::vector<const TensorInfo*> ptrs(in.size(), nullptr);
  for (size_t i = 0; i < in.size(); ++i) {
    infos[i].dtype = in[i].dtype;
    infos[i].shape.assign(in[i].shape.begin(), in[i].shape.end());
    if (i > 0 && in[i].data && in[i].numel > 0) {
      MOSS_ASSIGN_OR_RETURN(auto t, Tensor::from_bytes(in[i].dtype, infos[i].shape,
                                                       {in[i].data, static_cast<size_t>(in[i].numel) * dtype_size(in[i].dtype)}));
      infos[i].value = std::make_shared<const Tensor>(std::move(t));
    }
    if (i == 0 || infos[i].value) ptrs[i] = &infos[i];
  }
  MOSS_ASSIGN_OR_RETURN(auto sp, resize_spec(node, ptrs));
  const auto x = in[0].shape;
  const size_t r = x.size();
  const bool linear = sp.mode == "linear";
  // Per dim, per output index: two source indices, the weight of the second, and an outside flag.
  struct Tap { int64_t i0, i1; float w; bool outside; };
  std::vector<std::vector<Tap>> taps(r);
  for (size_t d = 0; d < r; ++d) {
    taps[d].resize(sp.out[d]);
    for (int64_t o = 0; o < sp.out[d]; ++o) {
      bool outside = false;
      float c = source_coord(sp, d, r, o, x[d], sp.out_len[d], outside);
      Tap t{0, 0, 0.0f, outside};
      if (linear) {
        c = std::clamp(c, 0.0f, static_cast<float>(x[d] - 1));
        t.i0 = static_cast<int64_t>(std::floor(c));
        t.i1 = std::min(t.i0 + 1, x[d] - 1);
        t.w = c - static_cast<float>(t.i0);
      } else {
        t.i0 = t.i1 = std::clamp<int64_t>(nearest_index(sp.nearest, c), 0, x[d] - 1);
      }
      taps[d][o] = t;
    }
  }
  std::vector<int64_t> st(r, 1);
  for (size_t i = r; i-- > 1;) st[i - 1] = st[i] * x[i];
  const float* X = in[0].as<float>();
  float* Y = out[0].as<float>();
  std::vector<int64_t> idx(r, 0);
  const int corners = linear ? (1 << r) : 1;
  for (int64_t o = 0; o < out[0].numel; ++o) {
    bool outside = false;
    for (size_t d = 0; d < r; ++d) outside |= taps[d][idx[d]].outside;
    float v = sp.extrapolation;
    if (!outside) {
      v = 0;
      for (int c = 0; c < corners; ++c) {
        float w = 1;
        int64_t off = 0;
        for (size_t d = 0; d < r && w != 0; ++d) {
          const Tap& t = taps[d][idx[d]];
          const bool hi = linear && ((c >> d) & 1);
          w *= linear ? (hi ? t.w : 1 - t.w) : 1.0f;
          off += (hi ? t.i1 : t.i0) * st[d];
        }
        if (w != 0) v += w * X[off];
      }
    }
    Y[o] = v;
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < sp.out[d]) break;
      idx[d] = 0;
    }
  }
  return Status::Ok();
}

}  // namespace

std::vector<OpKernel> resize_kernels() { return {{"Resize", infer_Resize, run_Resize, false, 0b1110}}; }

}  // namespace moss::engine::ref
