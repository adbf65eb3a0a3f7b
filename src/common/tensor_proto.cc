#include "common/tensor_proto.h"

#include "common/file_util.h"

#include <onnx/onnx.pb.h>

#include <bit>
#include <iterator>
#include <cstring>
#include <limits>
#include <optional>

namespace moss {
namespace {

static_assert(std::endian::native == std::endian::little, "tensor I/O assumes a little-endian host");

using P = onnx::TensorProto;

// Which typed field the ONNX spec assigns to each type.
enum class Field { kFloat, kInt32, kInt64, kDouble, kUInt64 };

Field field_for(DType d) {
  switch (d) {
    case DType::kFloat32: return Field::kFloat;
    case DType::kFloat64: return Field::kDouble;
    case DType::kInt64: return Field::kInt64;
    case DType::kUInt32: case DType::kUInt64: return Field::kUInt64;
    default: return Field::kInt32;  // int32 and every narrower type, float16/bfloat16 as bits
  }
}

std::string_view field_name(Field f) {
  switch (f) {
    case Field::kFloat: return "float_data";
    case Field::kInt32: return "int32_data";
    case Field::kInt64: return "int64_data";
    case Field::kDouble: return "double_data";
    case Field::kUInt64: return "uint64_data";
  }
  return "";
}

int field_size(const P& p, Field f) {
  switch (f) {
    case Field::kFloat: return p.float_data_size();
    case Field::kInt32: return p.int32_data_size();
    case Field::kInt64: return p.int64_data_size();
    case Field::kDouble: return p.double_data_size();
    case Field::kUInt64: return p.uint64_data_size();
  }
  return 0;
}

// Range of values int32_data may hold for a narrow type; bool is 0 or 1 exactly.
std::pair<int64_t, int64_t> int32_range(DType d) {
  switch (d) {
    case DType::kInt8: return {INT8_MIN, INT8_MAX};
    case DType::kInt16: return {INT16_MIN, INT16_MAX};
    case DType::kUInt8: return {0, UINT8_MAX};
    case DType::kUInt16: case DType::kFloat16: case DType::kBFloat16: return {0, UINT16_MAX};
    case DType::kBool: return {0, 1};
    default: return {INT32_MIN, INT32_MAX};
  }
}

template <typename T, typename Src>
void store_all(Tensor& t, const Src& values) {
  auto* out = t.raw();
  for (int i = 0; i < values.size(); ++i) {
    const T v = static_cast<T>(values.Get(i));
    std::memcpy(out + static_cast<size_t>(i) * sizeof(T), &v, sizeof(T));
  }
}

Status fill_from_int32(Tensor& t, const P& p) {
  const auto [lo, hi] = int32_range(t.dtype());
  for (int i = 0; i < p.int32_data_size(); ++i) {
    const int64_t v = p.int32_data(i);
    if (v < lo || v > hi) {
      return invalid_argument("int32_data[{}] = {} is out of range for {}", i, v, dtype_name(t.dtype()));
    }
  }
  switch (dtype_size(t.dtype())) {
    case 1: store_all<uint8_t>(t, p.int32_data()); break;
    case 2: store_all<uint16_t>(t, p.int32_data()); break;
    default: store_all<int32_t>(t, p.int32_data()); break;
  }
  return Status::Ok();
}

Status fill_typed(Tensor& t, const P& p, Field f) {
  switch (f) {
    case Field::kFloat: store_all<float>(t, p.float_data()); return Status::Ok();
    case Field::kDouble: store_all<double>(t, p.double_data()); return Status::Ok();
    case Field::kInt64: store_all<int64_t>(t, p.int64_data()); return Status::Ok();
    case Field::kInt32: return fill_from_int32(t, p);
    case Field::kUInt64:
      if (t.dtype() == DType::kUInt32) {
        for (int i = 0; i < p.uint64_data_size(); ++i) {
          if (p.uint64_data(i) > UINT32_MAX) {
            return invalid_argument("uint64_data[{}] = {} is out of range for uint32", i, p.uint64_data(i));
          }
        }
        store_all<uint32_t>(t, p.uint64_data());
      } else {
        store_all<uint64_t>(t, p.uint64_data());
      }
      return Status::Ok();
  }
  return internal_error("unreachable");
}

Result<Tensor> convert(const P& p) {
  if (p.data_location() == P::EXTERNAL || p.external_data_size() > 0) {
    return unimplemented("tensors with external data are not supported (data must be inline)");
  }
  if (p.has_segment()) return unimplemented("segmented tensors are not supported");
  if (p.data_type() == P::STRING) return unimplemented("string tensors are not supported");
  auto dtype = dtype_from_onnx(p.data_type());
  if (!dtype) {
    if (p.data_type() == P::UNDEFINED || !P::DataType_IsValid(p.data_type())) {
      return invalid_argument("invalid tensor data type {}", p.data_type());
    }
    return unimplemented("{} tensors are not supported", onnx_type_name(p.data_type()));
  }
  std::vector<int64_t> shape(p.dims().begin(), p.dims().end());
  MOSS_ASSIGN_OR_RETURN(int64_t numel, checked_numel(shape, *dtype));
  const Field f = field_for(*dtype);
  // Sizes are checked against the data actually present before allocating, so a proto that
  // claims huge dims but carries no data cannot make us reserve gigabytes.
  const uint64_t nbytes = static_cast<uint64_t>(numel) * dtype_size(*dtype);
  if (p.has_raw_data() && p.raw_data().size() != nbytes) {
    return invalid_argument("raw_data has {} bytes but {} {} needs {}", p.raw_data().size(),
                            dtype_name(*dtype), shape_to_string(shape), nbytes);
  }
  if (!p.has_raw_data() && static_cast<int64_t>(field_size(p, f)) != numel) {
    return invalid_argument("{} holds {} values but {} {} needs {}", field_name(f), field_size(p, f),
                            dtype_name(*dtype), shape_to_string(shape), numel);
  }
  for (Field other : {Field::kFloat, Field::kInt32, Field::kInt64, Field::kDouble, Field::kUInt64}) {
    if (other != f && field_size(p, other) > 0) {
      return invalid_argument("{} is set but a {} tensor keeps its values in {}", field_name(other),
                              dtype_name(*dtype), p.has_raw_data() ? "raw_data" : field_name(f));
    }
  }
  if (p.has_raw_data()) {
    if (field_size(p, f) > 0) return invalid_argument("both raw_data and {} are set", field_name(f));
    // Copied once into place (a zero-filled tensor then overwritten would touch it twice).
    const std::string& raw = p.raw_data();
    MOSS_ASSIGN_OR_RETURN(
        Tensor t, Tensor::from_bytes(*dtype, std::move(shape),
                                     {reinterpret_cast<const uint8_t*>(raw.data()), raw.size()}));
    if (*dtype == DType::kBool) {
      for (uint8_t b : t.bytes()) {
        if (b > 1) return invalid_argument("bool element with value {}", b);
      }
    }
    return t;
  }
  MOSS_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(*dtype, std::move(shape)));
  MOSS_RETURN_IF_ERROR(fill_typed(t, p, f));
  return t;
}

}  // namespace

std::optional<DType> dtype_from_onnx(int64_t t) {
  switch (t) {
    case P::FLOAT: return DType::kFloat32;
    case P::DOUBLE: return DType::kFloat64;
    case P::FLOAT16: return DType::kFloat16;
    case P::BFLOAT16: return DType::kBFloat16;
    case P::INT8: return DType::kInt8;
    case P::INT16: return DType::kInt16;
    case P::INT32: return DType::kInt32;
    case P::INT64: return DType::kInt64;
    case P::UINT8: return DType::kUInt8;
    case P::UINT16: return DType::kUInt16;
    case P::UINT32: return DType::kUInt32;
    case P::UINT64: return DType::kUInt64;
    case P::BOOL: return DType::kBool;
    default: return std::nullopt;
  }
}

std::string_view onnx_type_name(int64_t t) {
  // By number: the types after bfloat16 (16) are newer than some onnx.proto versions.
  static constexpr std::string_view kNames[] = {
      "undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64", "string", "bool",
      "float16", "double", "uint32", "uint64", "complex64", "complex128", "bfloat16",
      "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "uint4", "int4",
      "float4e2m1", "float8e8m0"};
  if (t < 0 || t >= static_cast<int64_t>(std::size(kNames))) return kNames[0];
  return kNames[t];
}

Result<Tensor> tensor_from_proto(const onnx::TensorProto& proto) {
  auto t = convert(proto);
  if (!t.ok()) {
    return t.status().with_context(
        proto.name().empty() ? std::string("TensorProto") : fmt::format("TensorProto '{}'", proto.name()));
  }
  return t;
}

Result<NamedTensor> read_tensor_proto(std::span<const uint8_t> bytes) {
  if (bytes.size() > kMaxTensorProtoBytes) {
    return resource_exhausted("TensorProto of {} bytes exceeds the limit of {}", bytes.size(),
                              kMaxTensorProtoBytes);
  }
  P proto;
  if (!proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return invalid_argument("not a valid serialized TensorProto");
  }
  MOSS_ASSIGN_OR_RETURN(Tensor t, tensor_from_proto(proto));
  return NamedTensor{proto.name(), std::move(t)};
}

Result<NamedTensor> read_tensor_proto_file(const std::filesystem::path& path) {
  auto bytes = read_file(path, kMaxTensorProtoBytes);
  if (!bytes.ok()) return bytes.status();
  auto t = read_tensor_proto(*bytes);
  if (!t.ok()) return t.status().with_context(fmt::format("reading {}", path.string()));
  return t;
}

}  // namespace moss
