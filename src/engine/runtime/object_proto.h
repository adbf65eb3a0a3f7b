// Values of any kind (graph/object.h) from ONNX protos: TensorProto (numeric or string),
// SequenceProto and OptionalProto, as the ONNX test data stores sequence and optional inputs and
// outputs. The declared type decides which message the bytes hold. Sizes are bounded like any
// tensor (kMaxTensorBytes per tensor, strings included), sequence lengths by kMaxSequenceLength
// and nesting by kMaxContainerDepth. Stateless: thread-safe.
#pragma once

#include "common/status.h"
#include "engine/graph/object.h"

#include <cstdint>
#include <span>
#include <string>

namespace onnx {
class TensorProto;
}  // namespace onnx

namespace moss::engine {

struct ParsedObject {
  std::string name;  // the proto's name (may be empty)
  ObjectPtr value;
};

// Parses bytes as the message of `declared` (a tensor, string tensor, sequence or optional).
Result<ParsedObject> read_object_proto(std::span<const uint8_t> bytes, const TensorType& declared);

// A string TensorProto (data_type STRING, values in string_data).
Result<StringTensor> strings_from_proto(const onnx::TensorProto& proto);

}  // namespace moss::engine
