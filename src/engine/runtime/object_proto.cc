#include "engine/runtime/object_proto.h"

#include "common/tensor_proto.h"

#include <google/protobuf/io/coded_stream.h>
#include <onnx/onnx.pb.h>

namespace moss::engine {
namespace {

template <typename P>
Result<P> parse(std::span<const uint8_t> bytes, const char* what) {
  if (bytes.size() > kMaxTensorProtoBytes) {
    return resource_exhausted("{} of {} bytes exceeds the limit of {}", what, bytes.size(),
                              kMaxTensorProtoBytes);
  }
  P proto;
  if (!proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return invalid_argument("not a valid serialized {}", what);
  }
  return proto;
}

Result<ObjectPtr> from_tensor(const onnx::TensorProto& p) {
  if (p.data_type() == onnx::TensorProto::STRING) {
    MOSS_ASSIGN_OR_RETURN(StringTensor s, strings_from_proto(p));
    return strings_object(std::move(s));
  }
  MOSS_ASSIGN_OR_RETURN(Tensor t, tensor_from_proto(p));
  return tensor_object(std::make_shared<const Tensor>(std::move(t)));
}

// The type below `depth` containers of declared.
TensorType elem_type(const TensorType& declared, size_t depth) {
  TensorType t = declared;
  t.containers.erase(t.containers.begin(), t.containers.begin() + static_cast<std::ptrdiff_t>(depth));
  return t;
}

// SequenceProto and OptionalProto live in onnx-data.proto, which Debian does not ship; their
// wire format is small and shared: 1 name, 2 elem_type, 3 tensor(s), 4 sparse tensor(s),
// 5 sequence(s), 6 map(s), 7 optional(s) (repeated in a sequence, at most one in an optional).
struct Fields {
  std::string name;
  std::vector<std::span<const uint8_t>> at[8];  // length-delimited payloads by field number
};

Result<Fields> split_fields(std::span<const uint8_t> bytes, const char* what) {
  if (bytes.size() > kMaxTensorProtoBytes) {
    return resource_exhausted("{} of {} bytes exceeds the limit of {}", what, bytes.size(),
                              kMaxTensorProtoBytes);
  }
  google::protobuf::io::CodedInputStream in(bytes.data(), static_cast<int>(bytes.size()));
  Fields f;
  while (const uint32_t tag = in.ReadTag()) {
    const uint32_t field = tag >> 3;
    bool ok = true;
    switch (tag & 7) {
      case 0: {
        uint64_t v;
        ok = in.ReadVarint64(&v);
        break;
      }
      case 1: ok = in.Skip(8); break;
      case 5: ok = in.Skip(4); break;
      case 2: {
        uint32_t len = 0;
        ok = in.ReadVarint32(&len) && len <= bytes.size() && in.Skip(static_cast<int>(len));
        if (!ok) break;
        auto payload = bytes.subspan(static_cast<size_t>(in.CurrentPosition()) - len, len);
        if (field == 1) f.name.assign(payload.begin(), payload.end());
        else if (field < 8) f.at[field].push_back(payload);
        break;
      }
      default: ok = false;
    }
    if (!ok) return invalid_argument("not a valid serialized {}", what);
  }
  return f;
}

Result<ObjectPtr> from_bytes(std::span<const uint8_t> bytes, const TensorType& declared,
                             size_t depth);

// The elements of a sequence (all of them) or an optional (at most one).
Result<std::vector<ObjectPtr>> elements(const Fields& f, const TensorType& declared, size_t depth) {
  if (depth >= kMaxContainerDepth) return invalid_argument("sequences/optionals nest too deep");
  if (!f.at[4].empty() || !f.at[6].empty()) {
    return unimplemented("sparse tensors and maps are not supported");
  }
  size_t n = 0;
  for (int field : {3, 5, 7}) n += f.at[field].size();
  if (n > kMaxSequenceLength) {
    return resource_exhausted("sequence of {} elements exceeds {}", n, kMaxSequenceLength);
  }
  const bool inner = depth + 1 < declared.containers.size();
  const int want = !inner ? 3 : declared.containers[depth + 1] == Container::kSequence ? 5 : 7;
  std::vector<ObjectPtr> items;
  for (int field : {3, 5, 7}) {
    if (f.at[field].empty()) continue;
    if (field != want) {
      return invalid_argument("an element's kind does not match the declared type {}",
                              type_name(declared));
    }
    for (auto payload : f.at[field]) {
      MOSS_ASSIGN_OR_RETURN(auto o, from_bytes(payload, declared, depth + 1));
      items.push_back(std::move(o));
    }
  }
  return items;
}

// Bytes holding the value below `depth` containers of declared.
Result<ObjectPtr> from_bytes(std::span<const uint8_t> bytes, const TensorType& declared,
                             size_t depth) {
  if (depth == declared.containers.size()) {
    MOSS_ASSIGN_OR_RETURN(auto p, parse<onnx::TensorProto>(bytes, "TensorProto"));
    return from_tensor(p);
  }
  const bool seq = declared.containers[depth] == Container::kSequence;
  MOSS_ASSIGN_OR_RETURN(Fields f, split_fields(bytes, seq ? "SequenceProto" : "OptionalProto"));
  MOSS_ASSIGN_OR_RETURN(auto items, elements(f, declared, depth));
  if (seq) return sequence_object(std::move(items), elem_type(declared, depth + 1));
  if (items.size() > 1) return invalid_argument("an OptionalProto holds more than one value");
  return optional_object(items.empty() ? nullptr : items[0], elem_type(declared, depth + 1));
}

}  // namespace

Result<StringTensor> strings_from_proto(const onnx::TensorProto& p) {
  if (p.data_type() != onnx::TensorProto::STRING) {
    return invalid_argument("TensorProto is not a string tensor");
  }
  if (p.data_location() == onnx::TensorProto::EXTERNAL || p.has_raw_data()) {
    return invalid_argument("a string TensorProto keeps its values in string_data");
  }
  StringTensor s;
  s.shape.assign(p.dims().begin(), p.dims().end());
  // One byte per element bounds the count like a uint8 tensor of that shape.
  MOSS_ASSIGN_OR_RETURN(int64_t n, checked_numel(s.shape, DType::kUInt8));
  if (p.string_data_size() != n) {
    return invalid_argument("string_data holds {} values but shape {} needs {}",
                            p.string_data_size(), shape_to_string(s.shape), n);
  }
  size_t bytes = 0;
  for (const std::string& v : p.string_data()) bytes += v.size();
  if (bytes > kMaxTensorBytes) {
    return resource_exhausted("string tensor of {} bytes exceeds {}", bytes, kMaxTensorBytes);
  }
  s.data.assign(p.string_data().begin(), p.string_data().end());
  return s;
}

Result<ParsedObject> read_object_proto(std::span<const uint8_t> bytes, const TensorType& declared) {
  ParsedObject out;
  if (declared.containers.empty()) {
    MOSS_ASSIGN_OR_RETURN(auto p, parse<onnx::TensorProto>(bytes, "TensorProto"));
    out.name = p.name();
  } else {
    MOSS_ASSIGN_OR_RETURN(Fields f, split_fields(bytes, "SequenceProto/OptionalProto"));
    out.name = f.name;
  }
  MOSS_ASSIGN_OR_RETURN(out.value, from_bytes(bytes, declared, 0));
  return out;
}

}  // namespace moss::engine
