// ONNX TensorProto (.pb) read: the format of the ONNX conformance data and of model initializers.
//
// Supports every DType of common/tensor.h, stored either in raw_data (little-endian) or in the
// typed repeated field the ONNX spec assigns to that type: float_data (float), int32_data (int32,
// int16, int8, uint16, uint8, bool, and the bit patterns of float16 and bfloat16), int64_data,
// double_data, uint64_data (uint32, uint64). Values out of range for the type, a data count that
// does not match the dims, data in a field that does not belong to the type, or no data at all are
// invalid-argument errors. External data, segments, string and complex tensors are refused as
// unimplemented. Stateless functions: thread-safe.
//
// onnx::TensorProto is only forward-declared so that this header does not pull protobuf into every
// file that includes it; callers holding a proto include "onnx/onnx.pb.h" themselves.
#pragma once

#include "common/status.h"
#include "common/tensor.h"
#include "common/tensor_bundle.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string_view>

namespace onnx {
class TensorProto;
}  // namespace onnx

namespace moss {

// Largest serialized TensorProto accepted (protobuf parses at most 2 GiB in one message).
inline constexpr size_t kMaxTensorProtoBytes = (size_t{2} << 30) - 1;

// The DType of an ONNX TensorProto.DataType number (1 = float, 7 = int64, ...), or nullopt for a
// type the engine's tensors cannot hold (string, complex, float8, 4-bit) or an unknown number.
std::optional<DType> dtype_from_onnx(int64_t data_type);
// The ONNX name of a TensorProto.DataType number ("float", "float8e4m3fn", "string"), for errors
// about types that have no DType; "undefined" for 0 and unknown numbers.
std::string_view onnx_type_name(int64_t data_type);

// Converts an already parsed proto (e.g. a model initializer). The proto's name is not used.
Result<Tensor> tensor_from_proto(const onnx::TensorProto& proto);

// Parses a serialized TensorProto; the result carries the proto's name (may be empty).
Result<NamedTensor> read_tensor_proto(std::span<const uint8_t> bytes);
Result<NamedTensor> read_tensor_proto_file(const std::filesystem::path& path);

}  // namespace moss
