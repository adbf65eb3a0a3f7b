// GridSample (4-D): bilinear/linear, nearest and bicubic/cubic sampling of X at the normalized
// grid positions, padding zeros/border/reflection, align_corners. Follows ONNX Runtime's CPU
// kernel (coordinates padded first, then pixels fetched with the padding mode; cubic A = -0.75).
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <algorithm>
#include <cmath>

namespace moss::engine::ref {
namespace {

enum class Mode { kLinear, kNearest, kCubic };
enum class Padding { kZeros, kBorder, kReflection };

Result<Mode> mode_of(const Node& node) {
  const std::string m = node.attr_string("mode", node.opset >= 20 ? "linear" : "bilinear");
  if (m == "bilinear" || m == "linear") return Mode::kLinear;
  if (m == "nearest") return Mode::kNearest;
  if (m == "bicubic" || m == "cubic") return Mode::kCubic;
  return invalid_argument("{}: mode '{}' is not valid", node.label(), m);
}

Result<Padding> padding_of(const Node& node) {
  const std::string p = node.attr_string("padding_mode", "zeros");
  if (p == "zeros") return Padding::kZeros;
  if (p == "border") return Padding::kBorder;
  if (p == "reflection") return Padding::kReflection;
  return invalid_argument("{}: padding_mode '{}' is not valid", node.label(), p);
}

Status infer_GridSample(const Node& node, std::span<const TensorInfo* const> in,
                        std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "X"));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[1], "grid"));
  MOSS_RETURN_IF_ERROR(mode_of(node).status());
  MOSS_RETURN_IF_ERROR(padding_of(node).status());
  const auto& x = in[0]->shape;
  const auto& g = in[1]->shape;
  if (x.size() != 4 || g.size() != 4 || g[0] != x[0] || g[3] != 2) {
    return unimplemented("{}: only 4-D X [N, C, H, W] with grid [N, H_out, W_out, 2] is supported", node.label());
  }
  return set_out(out, in[0]->dtype, {x[0], x[1], g[1], g[2]});
}

double reflect(double x, double lo, double hi) {
  const double range = hi - lo;
  if (range <= 0) return lo;
  if (x < lo) {
    const double d = lo - x;
    const int64_t n = static_cast<int64_t>(d / range);
    const double r = d - static_cast<double>(n) * range;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const double d = x - hi;
    const int64_t n = static_cast<int64_t>(d / range);
    const double r = d - static_cast<double>(n) * range;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

void cubic_coeffs(double t, double c[4]) {
  const double a = -0.75;
  t = std::fabs(t);
  c[0] = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a;
  c[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
  c[2] = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1;
  c[3] = ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a;
}

Status run_GridSample(const Node& node, std::span<const View> in, std::span<const View> out) {
  MOSS_ASSIGN_OR_RETURN(Mode mode, mode_of(node));
  MOSS_ASSIGN_OR_RETURN(Padding pad, padding_of(node));
  const bool align = node.attr_int("align_corners", 0) != 0;
  const int64_t N = in[0].shape[0], C = in[0].shape[1], H = in[0].shape[2], W = in[0].shape[3];
  const int64_t Ho = in[1].shape[1], Wo = in[1].shape[2];
  const double x_min = align ? 0 : -0.5, y_min = align ? 0 : -0.5;
  const double x_max = align ? static_cast<double>(W - 1) : static_cast<double>(W) - 0.5;
  const double y_max = align ? static_cast<double>(H - 1) : static_cast<double>(H) - 0.5;
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using CT = compute_t<T>;
    const T* X = in[0].as<T>();
    const T* G = in[1].as<T>();
    T* Y = out[0].as<T>();
    auto pixel = [&](const T* img, int64_t r, int64_t c) -> double {
      if (pad == Padding::kZeros) {
        return r >= 0 && r < H && c >= 0 && c < W ? static_cast<double>(static_cast<CT>(img[r * W + c])) : 0.0;
      }
      if (pad == Padding::kBorder) {
        r = std::clamp<int64_t>(r, 0, H - 1);
        c = std::clamp<int64_t>(c, 0, W - 1);
      } else {
        c = static_cast<int64_t>(reflect(static_cast<double>(c), x_min, x_max));
        r = static_cast<int64_t>(reflect(static_cast<double>(r), y_min, y_max));
        r = std::clamp<int64_t>(r, 0, H - 1);
        c = std::clamp<int64_t>(c, 0, W - 1);
      }
      return static_cast<double>(static_cast<CT>(img[r * W + c]));
    };
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t p = 0; p < Ho * Wo; ++p) {
        const T* gp = G + (n * Ho * Wo + p) * 2;
        const double gx = static_cast<double>(static_cast<CT>(gp[0]));
        const double gy = static_cast<double>(static_cast<CT>(gp[1]));
        double x = align ? (gx + 1) / 2 * static_cast<double>(W - 1) : ((gx + 1) * static_cast<double>(W) - 1) / 2;
        double y = align ? (gy + 1) / 2 * static_cast<double>(H - 1) : ((gy + 1) * static_cast<double>(H) - 1) / 2;
        if (mode == Mode::kNearest) {
          x = std::nearbyint(x);
          y = std::nearbyint(y);
        }
        if (x < x_min || x > x_max || y < y_min || y > y_max) {
          if (pad == Padding::kBorder) {
            x = std::clamp(x, 0.0, static_cast<double>(W - 1));
            y = std::clamp(y, 0.0, static_cast<double>(H - 1));
          } else if (pad == Padding::kReflection) {
            x = reflect(x, x_min, x_max);
            y = reflect(y, y_min, y_max);
          }
        }
        for (int64_t c = 0; c < C; ++c) {
          const T* img = X + (n * C + c) * H * W;
          double v;
          if (mode == Mode::kNearest) {
            v = pixel(img, static_cast<int64_t>(std::nearbyint(y)), static_cast<int64_t>(std::nearbyint(x)));
          } else if (mode == Mode::kLinear) {
            const double x1 = std::floor(x), y1 = std::floor(y);
            const int64_t c1 = static_cast<int64_t>(x1), r1 = static_cast<int64_t>(y1);
            const double dx1 = x - x1, dx2 = 1 - dx1, dy1 = y - y1, dy2 = 1 - dy1;
            v = dy2 * (dx2 * pixel(img, r1, c1) + dx1 * pixel(img, r1, c1 + 1)) +
                dy1 * (dx2 * pixel(img, r1 + 1, c1) + dx1 * pixel(img, r1 + 1, c1 + 1));
          } else {
            const double x0 = std::floor(x) - 1, y0 = std::floor(y) - 1;
            double cx[4], cy[4];
            cubic_coeffs(x - x0 - 1, cx);
            cubic_coeffs(y - y0 - 1, cy);
            v = 0;
            for (int i = 0; i < 4; ++i) {
              double row = 0;
              for (int j = 0; j < 4; ++j) {
                row += cx[j] * pixel(img, static_cast<int64_t>(y0) + i, static_cast<int64_t>(x0) + j);
              }
              v += cy[i] * row;
            }
          }
          Y[(n * C + c) * Ho * Wo + p] = T(static_cast<CT>(v));
        }
      }
    }
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> grid_sample_kernels() { return {{"GridSample", infer_GridSample, run_GridSample}}; }

}  // namespace moss::engine::ref
