// Det: determinant of each [M, M] matrix in [..., M, M], by LU decomposition with partial
// pivoting in double. Float types.
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <cmath>
#include <utility>

namespace moss::engine::ref {
namespace {

Status infer_Det(const Node& node, std::span<const TensorInfo* const> in,
                 std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "X"));
  const auto& s = in[0]->shape;
  if (s.size() < 2 || s[s.size() - 1] != s[s.size() - 2]) {
    return invalid_argument("{}: X must be [..., M, M], got {}", node.label(), shape_to_string(s));
  }
  return set_out(out, in[0]->dtype, std::vector<int64_t>(s.begin(), s.end() - 2));
}

Status run_Det(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t M = in[0].shape.back();
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    std::vector<double> a(static_cast<size_t>(M * M));
    for (int64_t b = 0; b < out[0].numel; ++b) {
      for (int64_t i = 0; i < M * M; ++i) a[i] = static_cast<double>(static_cast<C>(x[b * M * M + i]));
      double det = 1;
      for (int64_t c = 0; c < M && det != 0; ++c) {
        int64_t piv = c;
        for (int64_t r = c + 1; r < M; ++r) {
          if (std::fabs(a[r * M + c]) > std::fabs(a[piv * M + c])) piv = r;
        }
        if (a[piv * M + c] == 0) {
          det = 0;
          break;
        }
        if (piv != c) {
          for (int64_t k = 0; k < M; ++k) std::swap(a[c * M + k], a[piv * M + k]);
          det = -det;
        }
        det *= a[c * M + c];
        for (int64_t r = c + 1; r < M; ++r) {
          const double f = a[r * M + c] / a[c * M + c];
          for (int64_t k = c; k < M; ++k) a[r * M + k] -= f * a[c * M + k];
        }
      }
      y[b] = T(static_cast<C>(det));
    }
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> det_kernels() { return {{"Det", infer_Det, run_Det}}; }

}  // namespace moss::engine::ref
