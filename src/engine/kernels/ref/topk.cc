// TopK: the k largest (or smallest) elements along an axis with their int64 indices; ties keep the
// lower index first, as ONNX specifies. K is an input from opset 10 (an attribute before), and must
// be known when the plan is built (it sets the output shape).
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace moss::engine::ref {
namespace {

Result<int64_t> k_of(const Node& node, const TensorInfo* k) {
  if (node.opset < 10) return node.attr_int("k", -1);
  MOSS_ASSIGN_OR_RETURN(auto v, const_ints(node, k, "K"));
  if (v.size() != 1) return invalid_argument("{}: K must have one element", node.label());
  return v[0];
}

Status infer_TopK(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, node.opset < 10 ? 1 : 2, node.opset < 10 ? 1 : 2));
  MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "X"));
  const int64_t r = static_cast<int64_t>(in[0]->shape.size());
  MOSS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", -1), std::max<int64_t>(r, 1)));
  if (r == 0) return invalid_argument("{}: X must have rank >= 1", node.label());
  MOSS_ASSIGN_OR_RETURN(int64_t k, k_of(node, in.size() > 1 ? in[1] : nullptr));
  if (k < 0 || k > in[0]->shape[static_cast<size_t>(axis)]) {
    return invalid_argument("{}: K={} is out of range for axis of size {}", node.label(), k,
                            in[0]->shape[static_cast<size_t>(axis)]);
  }
  out.resize(2);
  out[0].dtype = in[0]->dtype;
  out[0].shape = in[0]->shape;
  out[0].shape[static_cast<size_t>(axis)] = k;
  out[1].dtype = DType::kInt64;
  out[1].shape = out[0].shape;
  return Status::Ok();
}

Status run_TopK(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t r = static_cast<int64_t>(in[0].shape.size());
  const int64_t axis = *normalize_axis(node, node.attr_int("axis", -1), r);
  const AxisSplit s = split_at(in[0].shape, axis);
  const int64_t k = out[0].shape[static_cast<size_t>(axis)];
  const bool largest = node.attr_int("largest", 1) != 0;
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    int64_t* yi = out.size() > 1 && out[1].data ? out[1].as<int64_t>() : nullptr;
    std::vector<int64_t> order(static_cast<size_t>(s.n));
    for (int64_t o = 0; o < s.outer; ++o) {
      for (int64_t j = 0; j < s.inner; ++j) {
        const T* row = x + o * s.n * s.inner + j;
        auto val = [&](int64_t i) { return static_cast<C>(row[i * s.inner]); };
        std::iota(order.begin(), order.end(), 0);
        // NaN sorts as the largest value, like ONNX Runtime.
        auto before = [&](int64_t a, int64_t b) {
          const C va = val(a), vb = val(b);
          const bool na = std::isnan(static_cast<double>(va)), nb = std::isnan(static_cast<double>(vb));
          if (na || nb) return largest ? (na && !nb) || (na && nb && a < b) : (!na && nb) || (na && nb && a < b);
          if (va != vb) return largest ? va > vb : va < vb;
          return a < b;
        };
        std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
        for (int64_t t = 0; t < k; ++t) {
          const int64_t p = (o * k + t) * s.inner + j;
          y[p] = row[order[static_cast<size_t>(t)] * s.inner];
          if (yi) yi[p] = order[static_cast<size_t>(t)];
        }
      }
    }
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> topk_kernels() { return {{"TopK", infer_TopK, run_TopK, false, 0b10}}; }

}  // namespace moss::engine::ref
