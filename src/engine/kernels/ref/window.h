// Sliding-window geometry shared by Conv and the pools: auto_pad, pads, strides, dilations and
// ceil_mode resolved into per-dimension numbers, padded to 3 spatial dims (leading 1s) so the
// loops are written once for 1-D, 2-D and 3-D.
#pragma once

#include "engine/kernels/kernel.h"

#include <array>

namespace moss::engine::ref {

struct Window {
  int nd = 0;  // real spatial rank (1..3)
  std::array<int64_t, 3> in{1, 1, 1}, k{1, 1, 1}, stride{1, 1, 1}, dil{1, 1, 1};
  std::array<int64_t, 3> pad_b{0, 0, 0}, pad_e{0, 0, 0}, out{1, 1, 1};
};

// spatial: input dims after N, C. kernel: kernel_shape. allow_ceil: pools only.
Result<Window> window_geometry(const Node& node, std::span<const int64_t> spatial,
                               std::span<const int64_t> kernel, bool allow_ceil, bool allow_dilations);

}  // namespace moss::engine::ref
