// Tensor: a dense, row-major, owned n-dimensional array; the unit of model inputs and outputs.
//
// Shared by tensor I/O (npy, safetensors, TensorProto), the engine's public API and the worker.
// A value type: copyable, movable, not thread-safe.
#pragma once

#include "common/half.h"
#include "common/status.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moss {

enum class DType : uint8_t {
  kFloat32,
  kFloat64,
  kFloat16,
  kBFloat16,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kUInt8,
  kUInt16,
  kUInt32,
  kUInt64,
  kBool,
};

size_t dtype_size(DType dtype);
// Lower-case name as in ONNX/NumPy docs: "float32", "int64", "bool", ...
std::string_view dtype_name(DType dtype);
Result<DType> dtype_from_name(std::string_view name);

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::kFloat32; }
template <> constexpr DType dtype_of<double>() { return DType::kFloat64; }
template <> constexpr DType dtype_of<int8_t>() { return DType::kInt8; }
template <> constexpr DType dtype_of<int16_t>() { return DType::kInt16; }
template <> constexpr DType dtype_of<int32_t>() { return DType::kInt32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::kInt64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::kUInt8; }
template <> constexpr DType dtype_of<uint16_t>() { return DType::kUInt16; }
template <> constexpr DType dtype_of<uint32_t>() { return DType::kUInt32; }
template <> constexpr DType dtype_of<uint64_t>() { return DType::kUInt64; }
template <> constexpr DType dtype_of<bool>() { return DType::kBool; }
template <> constexpr DType dtype_of<Float16>() { return DType::kFloat16; }
template <> constexpr DType dtype_of<BFloat16>() { return DType::kBFloat16; }

// Upper bound on one tensor's size in bytes; readers of untrusted files refuse anything larger.
inline constexpr size_t kMaxTensorBytes = size_t{16} << 30;
inline constexpr size_t kMaxTensorRank = 16;

// Number of elements of a shape, or an error when a dimension is negative, the rank exceeds
// kMaxTensorRank, or the byte size of `dtype` elements would exceed kMaxTensorBytes.
Result<int64_t> checked_numel(std::span<const int64_t> shape, DType dtype);

std::string shape_to_string(std::span<const int64_t> shape);  // "[1, 3, 224, 224]"

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled tensor; fails on an invalid or oversized shape.
  static Result<Tensor> zeros(DType dtype, std::vector<int64_t> shape);
  // Copies `bytes`, which must be exactly numel * dtype_size bytes.
  static Result<Tensor> from_bytes(DType dtype, std::vector<int64_t> shape,
                                   std::span<const uint8_t> bytes);
  template <typename T>
  static Tensor from_vector(std::vector<int64_t> shape, const std::vector<T>& values) {
    Tensor t = zeros(dtype_of<T>(), std::move(shape)).value_or_die();
    if (static_cast<size_t>(t.numel()) != values.size()) {
      internal_error("from_vector: {} values for shape {}", values.size(),
                     shape_to_string(t.shape())).check();
    }
    for (size_t i = 0; i < values.size(); ++i) t.data<T>()[i] = values[i];
    return t;
  }

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  size_t rank() const { return shape_.size(); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return bytes_.size(); }

  uint8_t* raw() { return bytes_.data(); }
  const uint8_t* raw() const { return bytes_.data(); }
  std::span<const uint8_t> bytes() const { return bytes_; }
  std::span<uint8_t> bytes() { return bytes_; }

  // Typed access; precondition: dtype() == dtype_of<T>() (checked, aborts on misuse).
  template <typename T>
  T* data() {
    check_type(dtype_of<T>());
    return reinterpret_cast<T*>(bytes_.data());
  }
  template <typename T>
  const T* data() const {
    check_type(dtype_of<T>());
    return reinterpret_cast<const T*>(bytes_.data());
  }

  // Same dtype, shape and bytes.
  bool equals(const Tensor& other) const;

 private:
  void check_type(DType expected) const;

  DType dtype_ = DType::kFloat32;
  std::vector<int64_t> shape_;
  int64_t numel_ = 0;
  std::vector<uint8_t> bytes_;
};

}  // namespace moss
