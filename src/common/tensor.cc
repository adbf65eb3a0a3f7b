#include "common/tensor.h"

#include <cstring>
#include <limits>

namespace moss {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kFloat64: case DType::kInt64: case DType::kUInt64: return 8;
    case DType::kFloat32: case DType::kInt32: case DType::kUInt32: return 4;
    case DType::kFloat16: case DType::kBFloat16: case DType::kInt16: case DType::kUInt16: return 2;
    case DType::kInt8: case DType::kUInt8: case DType::kBool: return 1;
  }
  return 0;
}

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
    case DType::kInt8: return "int8";
    case DType::kInt16: return "int16";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kUInt8: return "uint8";
    case DType::kUInt16: return "uint16";
    case DType::kUInt32: return "uint32";
    case DType::kUInt64: return "uint64";
    case DType::kBool: return "bool";
  }
  return "unknown";
}

Result<DType> dtype_from_name(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(DType::kBool); ++i) {
    auto d = static_cast<DType>(i);
    if (dtype_name(d) == name) return d;
  }
  return invalid_argument("unknown dtype '{}'", name);
}

Result<int64_t> checked_numel(std::span<const int64_t> shape, DType dtype) {
  if (shape.size() > kMaxTensorRank) {
    return invalid_argument("tensor rank {} exceeds the limit of {}", shape.size(), kMaxTensorRank);
  }
  const uint64_t limit = kMaxTensorBytes / dtype_size(dtype);
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return invalid_argument("negative dimension in shape {}", shape_to_string(shape));
    if (d == 0) return int64_t{0};  // checked below only for non-empty tensors
    if (static_cast<uint64_t>(d) > limit || n > limit / static_cast<uint64_t>(d)) {
      return resource_exhausted("tensor of shape {} and type {} exceeds {} bytes",
                                shape_to_string(shape), dtype_name(dtype), kMaxTensorBytes);
    }
    n *= static_cast<uint64_t>(d);
  }
  return static_cast<int64_t>(n);
}

std::string shape_to_string(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

namespace {

// A zero dimension ends checked_numel early; this still validates the remaining dimensions.
Result<int64_t> tensor_numel(std::span<const int64_t> shape, DType dtype) {
  for (int64_t d : shape) {
    if (d < 0) return invalid_argument("negative dimension in shape {}", shape_to_string(shape));
  }
  return checked_numel(shape, dtype);
}

}  // namespace

Result<Tensor> Tensor::zeros(DType dtype, std::vector<int64_t> shape) {
  MOSS_ASSIGN_OR_RETURN(int64_t n, tensor_numel(shape, dtype));
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = n;
  t.bytes_.assign(static_cast<size_t>(n) * dtype_size(dtype), 0);
  return t;
}

Result<Tensor> Tensor::from_bytes(DType dtype, std::vector<int64_t> shape,
                                  std::span<const uint8_t> bytes) {
  MOSS_ASSIGN_OR_RETURN(int64_t n, tensor_numel(shape, dtype));
  const size_t need = static_cast<size_t>(n) * dtype_size(dtype);
  if (bytes.size() != need) {
    return invalid_argument("tensor of shape {} and type {} needs {} bytes, got {}",
                            shape_to_string(shape), dtype_name(dtype), need, bytes.size());
  }
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = n;
  // One pass over fresh memory (not zero-filled first): model weights come through here.
  t.bytes_.assign(bytes.begin(), bytes.end());
  return t;
}

bool Tensor::equals(const Tensor& other) const {
  return dtype_ == other.dtype_ && shape_ == other.shape_ && bytes_ == other.bytes_;
}

void Tensor::check_type(DType expected) const {
  if (dtype_ != expected) {
    internal_error("tensor of type {} accessed as {}", dtype_name(dtype_), dtype_name(expected))
        .check();
  }
}

}  // namespace moss
