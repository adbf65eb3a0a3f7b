#include "engine/graph/object.h"

namespace moss::engine {

ObjectPtr tensor_object(std::shared_ptr<const Tensor> t) {
  auto o = std::make_shared<Object>();
  o->kind = Object::Kind::kTensor;
  o->tensor = std::move(t);
  return o;
}

ObjectPtr strings_object(StringTensor s) {
  auto o = std::make_shared<Object>();
  o->kind = Object::Kind::kStrings;
  o->strings = std::make_shared<const StringTensor>(std::move(s));
  return o;
}

ObjectPtr sequence_object(std::vector<ObjectPtr> items, TensorType elem) {
  auto o = std::make_shared<Object>();
  o->kind = Object::Kind::kSequence;
  o->items = std::move(items);
  o->elem = std::move(elem);
  return o;
}

ObjectPtr optional_object(ObjectPtr item, TensorType elem) {
  auto o = std::make_shared<Object>();
  o->kind = Object::Kind::kOptional;
  if (item) o->items.push_back(std::move(item));
  o->elem = std::move(elem);
  return o;
}

std::string type_name(const TensorType& t) {
  std::string s = t.is_string ? "tensor(string)" : fmt::format("tensor({})", dtype_name(t.dtype));
  for (auto it = t.containers.rbegin(); it != t.containers.rend(); ++it) {
    s = (*it == Container::kSequence ? "seq(" : "optional(") + s + ")";
  }
  return s;
}

TensorType type_of(const Object& o) {
  TensorType t;
  switch (o.kind) {
    case Object::Kind::kTensor: t.dtype = o.tensor->dtype(); break;
    case Object::Kind::kStrings: t.is_string = true; break;
    case Object::Kind::kSequence:
    case Object::Kind::kOptional:
      t = o.items.empty() ? o.elem : type_of(*o.items.front());
      t.containers.insert(t.containers.begin(), o.kind == Object::Kind::kSequence
                                                    ? Container::kSequence
                                                    : Container::kOptional);
      break;
  }
  return t;
}

namespace {

// Below `depth` containers of `declared`. An empty container matches whatever its element type
// (its producer may not know it: SequenceEmpty defaults to float). Where an optional is declared,
// a present value may also come unwrapped, as ONNX Runtime treats them (a Loop carrying
// optional(seq) whose body returns the seq).
bool matches_at(const Object& o, const TensorType& declared, size_t depth) {
  const size_t n = declared.containers.size();
  if (depth < n && declared.containers[depth] == Container::kOptional &&
      o.kind != Object::Kind::kOptional) {
    return matches_at(o, declared, depth + 1);
  }
  switch (o.kind) {
    case Object::Kind::kTensor:
      return depth == n && !declared.is_string && o.tensor->dtype() == declared.dtype;
    case Object::Kind::kStrings: return depth == n && declared.is_string;
    case Object::Kind::kSequence:
    case Object::Kind::kOptional: {
      const Container c = o.kind == Object::Kind::kSequence ? Container::kSequence
                                                            : Container::kOptional;
      if (depth >= n || declared.containers[depth] != c) return false;
      for (const ObjectPtr& i : o.items) {
        if (!matches_at(*i, declared, depth + 1)) return false;
      }
      return true;
    }
  }
  return false;
}

}  // namespace

bool type_matches(const Object& o, const TensorType& declared) {
  return matches_at(o, declared, 0);
}

size_t object_bytes(const Object& o) {
  switch (o.kind) {
    case Object::Kind::kTensor: return o.tensor->nbytes();
    case Object::Kind::kStrings: {
      size_t n = 0;
      for (const std::string& s : o.strings->data) n += s.size() + sizeof(std::string);
      return n;
    }
    default: {
      size_t n = 0;
      for (const ObjectPtr& i : o.items) n += object_bytes(*i);
      return n;
    }
  }
}

}  // namespace moss::engine
