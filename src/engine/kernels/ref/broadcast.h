// Row-wise iteration over numpy-broadcast operands: the innermost dimension is a plain loop with a
// per-operand stride of 0 or 1, so the compiler vectorises it; outer dimensions use an odometer.
#pragma once

#include "engine/kernels/kernel.h"

#include <array>
#include <vector>

namespace moss::engine::ref {

template <size_t K, typename Row>
void for_each_row(std::span<const int64_t> out_shape, std::array<const std::vector<int64_t>*, K> st,
                  Row&& row) {
  const size_t r = out_shape.size();
  if (numel_of(out_shape) == 0) return;
  if (r == 0) {
    std::array<int64_t, K> off{}, inner{};
    row(int64_t{0}, off, int64_t{1}, inner);
    return;
  }
  const int64_t n = out_shape[r - 1];
  std::array<int64_t, K> inner{};
  for (size_t k = 0; k < K; ++k) inner[k] = (*st[k])[r - 1];
  std::vector<int64_t> idx(r, 0);
  std::array<int64_t, K> off{};
  int64_t out_off = 0;
  const int64_t rows = numel_of(out_shape) / n;
  for (int64_t rr = 0; rr < rows; ++rr) {
    row(out_off, off, n, inner);
    out_off += n;
    // Advance the odometer over dims [0, r-1).
    for (size_t d = r - 1; d-- > 0;) {
      ++idx[d];
      for (size_t k = 0; k < K; ++k) off[k] += (*st[k])[d];
      if (idx[d] < out_shape[d]) break;
      for (size_t k = 0; k < K; ++k) off[k] -= (*st[k])[d] * idx[d];
      idx[d] = 0;
    }
  }
}

// out[i] = f(a[i], b[i]) with broadcasting.
template <typename TA, typename TB, typename TO, typename F>
void binary_broadcast(const View& a, const View& b, const View& out, F f) {
  const TA* pa = a.as<TA>();
  const TB* pb = b.as<TB>();
  TO* po = out.as<TO>();
  if (a.numel == out.numel && b.numel == out.numel) {
    for (int64_t i = 0; i < out.numel; ++i) po[i] = f(pa[i], pb[i]);
    return;
  }
  auto sa = broadcast_strides(a.shape, out.shape);
  auto sb = broadcast_strides(b.shape, out.shape);
  for_each_row<2>(out.shape, {&sa, &sb},
                  [&](int64_t o, std::array<int64_t, 2> off, int64_t n, std::array<int64_t, 2> in) {
                    const TA* x = pa + off[0];
                    const TB* y = pb + off[1];
                    TO* z = po + o;
                    if (in[0] == 1 && in[1] == 1) {
                      for (int64_t i = 0; i < n; ++i) z[i] = f(x[i], y[i]);
                    } else if (in[0] == 1) {
                      const TB yv = y[0];
                      for (int64_t i = 0; i < n; ++i) z[i] = f(x[i], yv);
                    } else if (in[1] == 1) {
                      const TA xv = x[0];
                      for (int64_t i = 0; i < n; ++i) z[i] = f(xv, y[i]);
                    } else {
                      for (int64_t i = 0; i < n; ++i) z[i] = f(x[0], y[0]);
                    }
                  });
}

}  // namespace moss::engine::ref
