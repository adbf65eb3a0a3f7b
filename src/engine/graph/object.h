// Values that are not plain numeric tensors: string tensors, sequences of tensors and optionals
// (ONNX's seq(...) and optional(...) types). They exist only in the interpreter (the plan's tail
// and subgraphs): the arena plan, the worker and `moss model run` handle plain tensors only, and a
// model whose graph inputs or outputs are of these kinds is refused unless compiled with
// CompileOptions::allow_non_tensor_io (the conformance driver). Immutable once built and shared by
// pointer, so passing a sequence through Identity or a loop never copies it.
#pragma once

#include "common/status.h"
#include "common/tensor.h"
#include "engine/graph/graph.h"

#include <memory>
#include <string>
#include <vector>

namespace moss::engine {

// A tensor of strings (row-major like Tensor).
struct StringTensor {
  std::vector<int64_t> shape;
  std::vector<std::string> data;
};

// Bounds for values built from request data: strings total at most kMaxTensorBytes per tensor
// (like any tensor), a sequence holds at most kMaxSequenceLength elements and nests at most
// kMaxContainerDepth containers. Values are immutable, so SequenceInsert/Erase copy the element
// pointers: a loop building a sequence one element at a time does O(n^2) pointer copies, which
// this length keeps to about a second.
inline constexpr size_t kMaxSequenceLength = size_t{1} << 16;
inline constexpr size_t kMaxContainerDepth = 8;

struct Object;
using ObjectPtr = std::shared_ptr<const Object>;

struct Object {
  enum class Kind : uint8_t { kTensor, kStrings, kSequence, kOptional };
  Kind kind = Kind::kTensor;
  std::shared_ptr<const Tensor> tensor;         // kTensor
  std::shared_ptr<const StringTensor> strings;  // kStrings
  // kSequence: the elements; kOptional: none (empty) or one.
  std::vector<ObjectPtr> items;
  // kSequence/kOptional: the type of an element (needed when there is none): containers below
  // this one, element type string or dtype.
  TensorType elem;

  bool is_tensor() const { return kind == Kind::kTensor; }
};

ObjectPtr tensor_object(std::shared_ptr<const Tensor> t);
ObjectPtr strings_object(StringTensor s);
ObjectPtr sequence_object(std::vector<ObjectPtr> items, TensorType elem);
ObjectPtr optional_object(ObjectPtr item, TensorType elem);  // item null: empty optional

// "tensor(float32)", "tensor(string)", "seq(tensor(int64))", "optional(seq(...))".
std::string type_name(const TensorType& t);
// The type of a value (its elements' declared type when a container is empty).
TensorType type_of(const Object& o);
// Whether o may be bound where `declared` is expected (kinds, element types; shapes unchecked;
// an empty sequence or optional matches any element type).
bool type_matches(const Object& o, const TensorType& declared);
// Bytes a value holds (strings count their characters), for the size bounds.
size_t object_bytes(const Object& o);

}  // namespace moss::engine
