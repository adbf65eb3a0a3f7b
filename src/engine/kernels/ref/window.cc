#include "engine/kernels/ref/window.h"

namespace moss::engine::ref {

Result<Window> window_geometry(const Node& node, std::span<const int64_t> spatial,
                               std::span<const int64_t> kernel, bool allow_ceil,
                               bool allow_dilations) {
  const size_t nd = spatial.size();
  if (nd < 1 || nd > 3) {
    return unimplemented("{}: {}-D spatial input is not supported (1-D to 3-D)", node.label(), nd);
  }
  if (kernel.size() != nd) {
    return invalid_argument("{}: kernel has {} dims for {} spatial dims", node.label(), kernel.size(), nd);
  }
  auto strides = node.attr_ints("strides");
  auto dils = node.attr_ints("dilations");
  auto pads = node.attr_ints("pads");
  if (!strides.empty() && strides.size() != nd) return invalid_argument("{}: strides has wrong length", node.label());
  if (!dils.empty() && dils.size() != nd) return invalid_argument("{}: dilations has wrong length", node.label());
  if (!dils.empty() && !allow_dilations) {
    for (int64_t d : dils) {
      if (d != 1) return unimplemented("{}: dilations are not supported in this opset", node.label());
    }
  }
  if (!pads.empty() && pads.size() != 2 * nd) return invalid_argument("{}: pads has wrong length", node.label());
  const std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  const bool ceil = node.attr_int("ceil_mode", 0) != 0;
  if (ceil && !allow_ceil) return invalid_argument("{}: ceil_mode is not valid here", node.label());
  Window w;
  w.nd = static_cast<int>(nd);
  const size_t off = 3 - nd;
  for (size_t i = 0; i < nd; ++i) {
    const size_t j = off + i;
    w.in[j] = spatial[i];
    w.k[j] = kernel[i];
    w.stride[j] = strides.empty() ? 1 : strides[i];
    w.dil[j] = dils.empty() ? 1 : dils[i];
    constexpr int64_t kMax = int64_t{1} << 31;
    if (w.k[j] > kMax || w.stride[j] > kMax || w.dil[j] > kMax ||
        (!pads.empty() && (pads[i] > kMax || pads[nd + i] > kMax))) {
      return invalid_argument("{}: kernel, strides, dilations or pads are too large", node.label());
    }
    if (w.k[j] < 1 || w.stride[j] < 1 || w.dil[j] < 1) {
      return invalid_argument("{}: kernel, strides and dilations must be positive", node.label());
    }
    const int64_t span = (w.k[j] - 1) * w.dil[j] + 1;
    if (auto_pad == "NOTSET") {
      w.pad_b[j] = pads.empty() ? 0 : pads[i];
      w.pad_e[j] = pads.empty() ? 0 : pads[nd + i];
      if (w.pad_b[j] < 0 || w.pad_e[j] < 0) return invalid_argument("{}: negative pads", node.label());
      const int64_t total = w.in[j] + w.pad_b[j] + w.pad_e[j] - span;
      if (total < 0) return invalid_argument("{}: kernel larger than padded input", node.label());
      w.out[j] = (ceil ? (total + w.stride[j] - 1) / w.stride[j] : total / w.stride[j]) + 1;
      // A window may not start inside the end padding (PyTorch/ONNX ceil_mode rule).
      if (ceil && (w.out[j] - 1) * w.stride[j] >= w.in[j] + w.pad_b[j]) --w.out[j];
    } else if (auto_pad == "VALID") {
      if (w.in[j] < span) return invalid_argument("{}: kernel larger than input", node.label());
      w.out[j] = (w.in[j] - span) / w.stride[j] + 1;
    } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      w.out[j] = (w.in[j] + w.stride[j] - 1) / w.stride[j];
      const int64_t total = std::max<int64_t>(0, (w.out[j] - 1) * w.stride[j] + span - w.in[j]);
      w.pad_b[j] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      w.pad_e[j] = total - w.pad_b[j];
    } else {
      return unimplemented("{}: auto_pad '{}' is not supported", node.label(), auto_pad);
    }
  }
  return w;
}

}  // namespace moss::engine::ref
