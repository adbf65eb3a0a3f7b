// Resize (opset 10, 11, 13, 18, 19) and the deprecated Upsample (opset 7-9): nearest, (n-)linear
// and (n-)cubic modes with every coordinate_transformation_mode and nearest_mode, cubic_coeff_a,
// exclude_outside and antialias (opset 18: linear/cubic filters widened by 1/scale when
// downsampling, as ONNX's reference and ONNX Runtime do). Per dimension, every output index gets
// a list of (source index, weight) taps computed once per call; the output loop only combines
// table entries.
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
  float cubic_a = -0.75f;
  bool antialias = false, exclude_outside = false;
};

Result<ResizeSpec> resize_spec(const Node& node, std::span<const TensorInfo* const> in) {
  ResizeSpec sp;
  const auto& x = in[0]->shape;
  const size_t r = x.size();
  sp.mode = node.attr_string("mode", "nearest");
  // Upsample-7/9 and Resize-10 spell it "bilinear"/"linear"; opset 11 added "cubic".
  if (sp.mode == "bilinear" && node.op_type == "Upsample") sp.mode = "linear";
  if (sp.mode != "nearest" && sp.mode != "linear" && (sp.mode != "cubic" || node.opset < 11)) {
    return invalid_argument("{}: mode '{}' is not valid (nearest, linear{})", node.label(), sp.mode,
                            node.opset < 11 ? "" : ", cubic");
  }
  sp.antialias = node.attr_int("antialias", 0) != 0;
  if (sp.antialias && sp.mode == "nearest") {
    return invalid_argument("{}: antialias applies to linear and cubic modes only", node.label());
  }
  sp.cubic_a = node.attr_float("cubic_coeff_a", -0.75f);
  sp.exclude_outside = node.attr_int("exclude_outside", 0) != 0;
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
  if (node.op_type == "Upsample" && node.opset < 9) {
    if (const Attribute* a = node.attr("scales")) scales = a->floats;
    if (scales.empty()) return invalid_argument("{}: attribute 'scales' is required", node.label());
  } else if (node.opset < 11) {
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
  const bool attr_scales = node.op_type == "Upsample" && node.opset < 9;
  const size_t min_in = attr_scales ? 1 : node.opset < 11 ? 2 : 1;
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, min_in, node.opset < 11 ? min_in : 4));
  MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "X"));
  MOSS_ASSIGN_OR_RETURN(auto sp, resize_spec(node, in));
  if (!is_float_dtype(in[0]->dtype) && sp.mode != "nearest") {
    return unimplemented("{}: mode '{}' on {} is not supported (integer input: nearest only)",
                         node.label(), sp.mode, dtype_name(in[0]->dtype));
  }
  out.resize(1);
  out[0].dtype = in[0]->dtype;
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

// Interpolation filter weights (ONNX reference: _linear_coeffs[_antialias], _cubic_coeffs[_antialias])
// for the taps first..first+n-1 around source coordinate c, where first = floor(c) + start.
float cubic_weight(float x, float a) {
  x = std::fabs(x);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

struct Tap { int64_t i; float w; };

// Taps of one output index along one dimension of length len.
void filter_taps(const ResizeSpec& sp, float c, float scale, int64_t len, std::vector<Tap>& taps) {
  taps.clear();
  const bool cubic = sp.mode == "cubic";
  // Antialias widens the filter by 1/scale when downsampling.
  const float s = sp.antialias ? std::min(scale, 1.0f) : 1.0f;
  const int64_t start = cubic ? static_cast<int64_t>(std::floor(-2.0f / s)) + 1
                              : static_cast<int64_t>(std::floor(-1.0f / s)) + 1;
  const int64_t end = (cubic ? 2 : 1) - start + (cubic ? 0 : 1);  // exclusive
  const float f = std::floor(c);
  const float ratio = c - f;
  float sum = 0;
  for (int64_t k = start; k < end; ++k) {
    const float x = (static_cast<float>(k) - ratio) * s;
    float w = cubic ? cubic_weight(x, sp.cubic_a) : std::clamp(1.0f - std::fabs(x), 0.0f, 1.0f);
    const int64_t i = static_cast<int64_t>(f) + k;
    if (sp.exclude_outside && (i < 0 || i >= len)) w = 0;
    sum += w;
    taps.push_back({std::clamp<int64_t>(i, 0, len - 1), w});
  }
  // Antialias and exclude_outside normalise the weights (the plain filters already sum to 1).
  if ((sp.antialias || sp.exclude_outside) && sum != 0) {
    for (Tap& t : taps) t.w /= sum;
  }
}

template <typename T>
void resize_loop(const ResizeSpec& sp, std::span<const int64_t> x,
                 const std::vector<std::vector<std::vector<Tap>>>& taps,
                 const std::vector<std::vector<char>>& outside, const T* X, T* Y, int64_t numel) {
  using C = compute_t<T>;
  const size_t r = x.size();
  std::vector<int64_t> st(r, 1);
  for (size_t i = r; i-- > 1;) st[i - 1] = st[i] * x[i];
  std::vector<int64_t> idx(r, 0), k(r, 0);
  const bool nearest = sp.mode == "nearest";
  for (int64_t o = 0; o < numel; ++o) {
    bool out_of_roi = false;
    for (size_t d = 0; d < r; ++d) out_of_roi |= outside[d][idx[d]] != 0;
    double v = sp.extrapolation;
    if (!out_of_roi && nearest) {
      int64_t off = 0;
      for (size_t d = 0; d < r; ++d) off += taps[d][idx[d]][0].i * st[d];
      Y[o] = X[off];  // exact for every type (no trip through double)
    } else if (!out_of_roi) {
      // Sum over the product of every dimension's taps (odometer over k).
      v = 0;
      std::fill(k.begin(), k.end(), 0);
      for (;;) {
        double w = 1;
        int64_t off = 0;
        for (size_t d = 0; d < r; ++d) {
          const Tap& t = taps[d][idx[d]][k[d]];
          w *= t.w;
          off += t.i * st[d];
        }
        if (w != 0) v += w * static_cast<double>(static_cast<C>(X[off]));
        size_t d = r;
        while (d-- > 0) {
          if (++k[d] < static_cast<int64_t>(taps[d][idx[d]].size())) break;
          k[d] = 0;
        }
        if (d == static_cast<size_t>(-1)) break;
      }
    }
    if (out_of_roi || !nearest) Y[o] = T(static_cast<C>(v));
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < sp.out[d]) break;
      idx[d] = 0;
    }
  }
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
  // Per dim, per output index: its taps and whether it lies outside tf_crop_and_resize's roi.
  std::vector<std::vector<std::vector<Tap>>> taps(r);
  std::vector<std::vector<char>> outside(r);
  for (size_t d = 0; d < r; ++d) {
    taps[d].resize(sp.out[d]);
    outside[d].assign(sp.out[d], 0);
    for (int64_t o = 0; o < sp.out[d]; ++o) {
      bool out_of_roi = false;
      float c = source_coord(sp, d, r, o, x[d], sp.out_len[d], out_of_roi);
      outside[d][o] = out_of_roi;
      auto& t = taps[d][o];
      const bool identity = x[d] == sp.out[d] && sp.scale[d] == 1.0f &&
                            (sp.coord == "half_pixel" || sp.coord == "pytorch_half_pixel" ||
                             sp.coord == "asymmetric" || sp.coord == "half_pixel_symmetric");
      if (sp.mode == "nearest" || identity) {
        // An unresized dimension maps each index to itself for every filter.
        const int64_t i = sp.mode == "nearest" ? nearest_index(sp.nearest, c) : o;
        t.push_back({std::clamp<int64_t>(i, 0, x[d] - 1), 1.0f});
      } else if (sp.mode == "linear" && !sp.antialias) {
        c = std::clamp(c, 0.0f, static_cast<float>(x[d] - 1));
        const int64_t i0 = static_cast<int64_t>(std::floor(c));
        const float w = c - static_cast<float>(i0);
        t.push_back({i0, 1 - w});
        if (w != 0) t.push_back({std::min(i0 + 1, x[d] - 1), w});
      } else {
        filter_taps(sp, c, sp.scale[d], x[d], t);
      }
    }
  }
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    resize_loop<T>(sp, x, taps, outside, in[0].as<T>(), out[0].as<T>(), out[0].numel);
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> resize_kernels() {
  return {{"Resize", infer_Resize, run_Resize, false, 0b1110},
          {"Upsample", infer_Resize, run_Resize, false, 0b10}};
}

}  // namespace moss::engine::ref
