// Sequences and optionals (graph/object.h): SequenceEmpty/Construct/At/Insert/Erase/Length,
// SplitToSequence, ConcatFromSequence, SequenceMap, Optional, OptionalHasElement,
// OptionalGetElement, and Identity of any value. They run on Objects in the interpreter
// (kernel.h: run_object); elements are shared, never copied, except where a tensor is split or
// concatenated. Every position and type is checked against the actual values: a malformed model
// fails with a reason naming the node, never reads out of range.
#include "engine/kernels/evaluate.h"
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <cstring>

namespace moss::engine::ref {
namespace {

using Objects = std::vector<ObjectPtr>;


const Object* input(std::span<const ObjectPtr> in, size_t i) {
  return i < in.size() && in[i] ? in[i].get() : nullptr;
}

Result<const Object*> sequence_in(const Node& node, std::span<const ObjectPtr> in, size_t i) {
  const Object* o = input(in, i);
  if (!o || o->kind != Object::Kind::kSequence) {
    return invalid_argument("{}: input {} must be a sequence, got {}", node.label(), i,
                            o ? type_name(type_of(*o)) : std::string("nothing"));
  }
  return o;
}

Result<const Tensor*> tensor_in(const Node& node, std::span<const ObjectPtr> in, size_t i,
                                const char* what) {
  return object_tensor(node, i < in.size() ? in[i] : nullptr, what);
}

// A scalar (or one-element) int32/int64 input.
Result<int64_t> scalar_int(const Node& node, const Tensor& t, const char* what) {
  if ((t.dtype() != DType::kInt64 && t.dtype() != DType::kInt32) || t.numel() != 1) {
    return invalid_argument("{}: {} must be one int32 or int64, got {} {}", node.label(), what,
                            dtype_name(t.dtype()), shape_to_string(t.shape()));
  }
  return t.dtype() == DType::kInt64 ? t.data<int64_t>()[0] : t.data<int32_t>()[0];
}

// A position into n elements: [-n, n-1], or [-n, n] when inserting.
Result<size_t> position(const Node& node, int64_t p, size_t n, bool insert) {
  const int64_t len = static_cast<int64_t>(n);
  const int64_t hi = insert ? len : len - 1;
  if (p < -len || p > hi) {
    return out_of_range("{}: position {} is out of range for a sequence of {} elements",
                        node.label(), p, n);
  }
  return static_cast<size_t>(p < 0 ? p + len : p);
}

// Tensors and string tensors may be elements; every element of a sequence has one type.
Status check_element(const Node& node, const Object& seq, const Object& item) {
  if (item.kind != Object::Kind::kTensor && item.kind != Object::Kind::kStrings) {
    return invalid_argument("{}: a sequence element must be a tensor, got {}", node.label(),
                            type_name(type_of(item)));
  }
  const TensorType want = seq.items.empty() ? seq.elem : type_of(*seq.items.front());
  if (!type_matches(item, want)) {
    return invalid_argument("{}: element of type {} in a sequence of {}", node.label(),
                            type_name(type_of(item)), type_name(want));
  }
  return Status::Ok();
}

Status check_length(const Node& node, size_t n) {
  if (n > kMaxSequenceLength) {
    return resource_exhausted("{}: a sequence of more than {} elements", node.label(),
                              kMaxSequenceLength);
  }
  return Status::Ok();
}

Result<TensorType> dtype_attr(const Node& node, const char* key, int64_t def) {
  const int64_t number = node.attr_int(key, def);
  TensorType t;
  if (number == 8) {  // TensorProto.STRING
    t.is_string = true;
    return t;
  }
  MOSS_ASSIGN_OR_RETURN(t.dtype, dtype_from_onnx_number(node, number));
  return t;
}

ObjectPtr wrap(Tensor t) { return tensor_object(std::make_shared<const Tensor>(std::move(t))); }

// ---- sequences ---------------------------------------------------------------------------------

Status infer_SequenceEmpty(const Node& node, std::span<const TensorInfo* const> in,
                           std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(dtype_attr(node, "dtype", 1).status());
  return infer_object_outputs(node, in, out);
}

Result<Objects> run_SequenceEmpty(const Node& node, std::span<const ObjectPtr>, SubgraphRunner&) {
  MOSS_ASSIGN_OR_RETURN(TensorType elem, dtype_attr(node, "dtype", 1));  // default float
  return Objects{sequence_object({}, std::move(elem))};
}

Result<Objects> run_SequenceConstruct(const Node& node, std::span<const ObjectPtr> in,
                                      SubgraphRunner&) {
  if (in.empty() || !in[0]) return invalid_argument("{}: needs at least one input", node.label());
  MOSS_RETURN_IF_ERROR(check_length(node, in.size()));
  auto seq = std::make_shared<Object>();
  seq->kind = Object::Kind::kSequence;
  seq->elem = type_of(*in[0]);
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i]) return invalid_argument("{}: input {} is missing", node.label(), i);
    MOSS_RETURN_IF_ERROR(check_element(node, *seq, *in[i]));
    seq->items.push_back(in[i]);
  }
  return Objects{std::move(seq)};
}

Result<Objects> run_SequenceAt(const Node& node, std::span<const ObjectPtr> in, SubgraphRunner&) {
  MOSS_ASSIGN_OR_RETURN(const Object* seq, sequence_in(node, in, 0));
  MOSS_ASSIGN_OR_RETURN(const Tensor* pos, tensor_in(node, in, 1, "position"));
  if (!pos) return invalid_argument("{}: position is missing", node.label());
  MOSS_ASSIGN_OR_RETURN(int64_t p, scalar_int(node, *pos, "position"));
  MOSS_ASSIGN_OR_RETURN(size_t i, position(node, p, seq->items.size(), false));
  return Objects{seq->items[i]};
}

Result<Objects> run_SequenceInsert(const Node& node, std::span<const ObjectPtr> in,
                                   SubgraphRunner&) {
  MOSS_ASSIGN_OR_RETURN(const Object* seq, sequence_in(node, in, 0));
  const Object* item = input(in, 1);
  if (!item) return invalid_argument("{}: the tensor to insert is missing", node.label());
  MOSS_RETURN_IF_ERROR(check_element(node, *seq, *item));
  MOSS_RETURN_IF_ERROR(check_length(node, seq->items.size() + 1));
  size_t at = seq->items.size();
  MOSS_ASSIGN_OR_RETURN(const Tensor* pos, tensor_in(node, in, 2, "position"));
  if (pos) {
    MOSS_ASSIGN_OR_RETURN(int64_t p, scalar_int(node, *pos, "position"));
    MOSS_ASSIGN_OR_RETURN(at, position(node, p, seq->items.size(), true));
  }
  Objects items = seq->items;
  items.insert(items.begin() + static_cast<std::ptrdiff_t>(at), in[1]);
  return Objects{sequence_object(std::move(items), type_of(*in[1]))};
}

Result<Objects> run_SequenceErase(const Node& node, std::span<const ObjectPtr> in,
                                  SubgraphRunner&) {
  MOSS_ASSIGN_OR_RETURN(const Object* seq, sequence_in(node, in, 0));
  if (seq->items.empty()) {
    return out_of_range("{}: cannot erase from an empty sequence", node.label());
  }
  size_t at = seq->items.size() - 1;
  MOSS_ASSIGN_OR_RETURN(const Tensor* pos, tensor_in(node, in, 1, "position"));
  if (pos) {
    MOSS_ASSIGN_OR_RETURN(int64_t p, scalar_int(node, *pos, "position"));
    MOSS_ASSIGN_OR_RETURN(at, position(node, p, seq->items.size(), false));
  }
  Objects items = seq->items;
  items.erase(items.begin() + static_cast<std::ptrdiff_t>(at));
  return Objects{sequence_object(std::move(items), type_of(*seq->items.front()))};
}

Result<Objects> run_SequenceLength(const Node& node, std::span<const ObjectPtr> in,
                                   SubgraphRunner&) {
  MOSS_ASSIGN_OR_RETURN(const Object* seq, sequence_in(node, in, 0));
  return Objects{wrap(Tensor::from_vector<int64_t>({}, {static_cast<int64_t>(seq->items.size())}))};
}

// ---- SplitToSequence / ConcatFromSequence ------------------------------------------------------

Result<Objects> run_SplitToSequence(const Node& node, std::span<const ObjectPtr> in,
                                    SubgraphRunner&) {
  MOSS_ASSIGN_OR_RETURN(const Tensor* x, tensor_in(node, in, 0, "input"));
  if (!x) return invalid_argument("{}: input is missing", node.label());
  const int64_t rank = static_cast<int64_t>(x->rank());
  MOSS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", 0), rank));
  const int64_t dim = x->shape()[static_cast<size_t>(axis)];
  MOSS_ASSIGN_OR_RETURN(const Tensor* split, tensor_in(node, in, 1, "split"));
  std::vector<int64_t> lengths;
  bool keep = true;
  if (!split) {
    lengths.assign(static_cast<size_t>(dim), 1);
    keep = node.attr_int("keepdims", 1) != 0;
  } else if (split->rank() == 0) {
    MOSS_ASSIGN_OR_RETURN(int64_t chunk, scalar_int(node, *split, "split"));
    if (chunk <= 0) return invalid_argument("{}: split {} must be positive", node.label(), chunk);
    for (int64_t at = 0; at < dim; at += chunk) lengths.push_back(std::min(chunk, dim - at));
  } else {
    if (split->rank() != 1 || (split->dtype() != DType::kInt64 && split->dtype() != DType::kInt32)) {
      return invalid_argument("{}: split must be a scalar or a 1-D int32/int64 tensor", node.label());
    }
    int64_t sum = 0;
    for (int64_t i = 0; i < split->numel(); ++i) {
      const int64_t l = split->dtype() == DType::kInt64 ? split->data<int64_t>()[i]
                                                        : split->data<int32_t>()[i];
      if (l < 0) return invalid_argument("{}: split length {} is negative", node.label(), l);
      lengths.push_back(l);
      sum += l;
    }
    if (sum != dim) {
      return invalid_argument("{}: split lengths sum to {}, the axis has {}", node.label(), sum,
                              dim);
    }
  }
  MOSS_RETURN_IF_ERROR(check_length(node, lengths.size()));
  const AxisSplit s = split_at(x->shape(), axis);
  const size_t esize = dtype_size(x->dtype());
  Objects items;
  int64_t at = 0;
  for (int64_t l : lengths) {
    std::vector<int64_t> shape = x->shape();
    shape[static_cast<size_t>(axis)] = l;
    MOSS_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(x->dtype(), shape));
    const size_t block = static_cast<size_t>(l * s.inner) * esize;
    for (int64_t o = 0; o < s.outer && block > 0; ++o) {
      std::memcpy(t.raw() + static_cast<size_t>(o) * block,
                  x->raw() + static_cast<size_t>((o * s.n + at) * s.inner) * esize, block);
    }
    if (!keep) {
      shape.erase(shape.begin() + axis);
      MOSS_ASSIGN_OR_RETURN(t, Tensor::from_bytes(t.dtype(), shape, t.bytes()));
    }
    items.push_back(wrap(std::move(t)));
    at += l;
  }
  TensorType elem;
  elem.dtype = x->dtype();
  return Objects{sequence_object(std::move(items), elem)};
}

Result<Objects> run_ConcatFromSequence(const Node& node, std::span<const ObjectPtr> in,
                                       SubgraphRunner&) {
  MOSS_ASSIGN_OR_RETURN(const Object* seq, sequence_in(node, in, 0));
  if (seq->items.empty()) {
    return invalid_argument("{}: cannot concatenate an empty sequence", node.label());
  }
  const bool new_axis = node.attr_int("new_axis", 0) != 0;
  std::vector<const Tensor*> parts;
  for (const ObjectPtr& o : seq->items) {
    if (!o->is_tensor()) {
      return invalid_argument("{}: elements must be tensors of numbers, got {}", node.label(),
                              type_name(type_of(*o)));
    }
    parts.push_back(o->tensor.get());
  }
  const Tensor& first = *parts[0];
  const int64_t rank = static_cast<int64_t>(first.rank());
  MOSS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", 0),
                                                     new_axis ? rank + 1 : rank));
  std::vector<int64_t> out_shape = first.shape();
  if (new_axis) out_shape.insert(out_shape.begin() + axis, 0);
  int64_t total = 0;
  for (const Tensor* t : parts) {
    bool same = t->dtype() == first.dtype() && t->rank() == first.rank();
    for (size_t d = 0; same && d < first.rank(); ++d) {
      same = t->shape()[d] == first.shape()[d] || (!new_axis && static_cast<int64_t>(d) == axis);
    }
    if (!same) {
      return invalid_argument("{}: elements {} {} and {} {} cannot be concatenated on axis {}",
                              node.label(), dtype_name(first.dtype()),
                              shape_to_string(first.shape()), dtype_name(t->dtype()),
                              shape_to_string(t->shape()), axis);
    }
    total += new_axis ? 1 : t->shape()[static_cast<size_t>(axis)];
  }
  out_shape[static_cast<size_t>(axis)] = total;
  MOSS_ASSIGN_OR_RETURN(Tensor out, Tensor::zeros(first.dtype(), out_shape));
  const AxisSplit s = split_at(out_shape, axis);
  const size_t esize = dtype_size(first.dtype());
  int64_t at = 0;
  for (const Tensor* t : parts) {
    const int64_t l = new_axis ? 1 : t->shape()[static_cast<size_t>(axis)];
    const size_t block = static_cast<size_t>(l * s.inner) * esize;
    for (int64_t o = 0; o < s.outer && block > 0; ++o) {
      std::memcpy(out.raw() + static_cast<size_t>((o * s.n + at) * s.inner) * esize,
                  t->raw() + static_cast<size_t>(o) * block, block);
    }
    at += l;
  }
  return Objects{wrap(std::move(out))};
}

// ---- SequenceMap -------------------------------------------------------------------------------

Status check_SequenceMap(const Node& node) {
  const Graph* body = node.attr_graph("body");
  if (!body) return invalid_argument("{}: graph attribute 'body' is missing", node.label());
  if (node.explicit_inputs() < 1 || body->inputs.size() != node.explicit_inputs() ||
      body->outputs.size() != node.outputs.size()) {
    return invalid_argument("{}: body takes {} inputs and gives {} outputs, the node has {} and {}",
                            node.label(), body->inputs.size(), body->outputs.size(),
                            node.explicit_inputs(), node.outputs.size());
  }
  return Status::Ok();
}

Status infer_SequenceMap(const Node& node, std::span<const TensorInfo* const> in,
                         std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(check_SequenceMap(node));
  return infer_object_outputs(node, in, out);
}

Result<Objects> run_SequenceMap(const Node& node, std::span<const ObjectPtr> in,
                                SubgraphRunner& runner) {
  MOSS_RETURN_IF_ERROR(check_SequenceMap(node));
  const Graph& body = *node.attr_graph("body");
  const size_t ni = node.explicit_inputs();
  MOSS_ASSIGN_OR_RETURN(const Object* first, sequence_in(node, in, 0));
  const size_t len = first->items.size();
  for (size_t j = 1; j < ni; ++j) {
    if (!in[j]) return invalid_argument("{}: input {} is missing", node.label(), j);
    if (in[j]->kind == Object::Kind::kSequence && in[j]->items.size() != len) {
      return invalid_argument("{}: input sequences have {} and {} elements", node.label(), len,
                              in[j]->items.size());
    }
  }
  std::vector<Objects> outs(node.outputs.size());
  Objects body_in(ni), res;
  for (size_t i = 0; i < len; ++i) {
    for (size_t j = 0; j < ni; ++j) {
      body_in[j] = in[j]->kind == Object::Kind::kSequence ? in[j]->items[i] : in[j];
    }
    MOSS_RETURN_IF_ERROR(runner.run_objects(body, body_in, in.subspan(ni), res));
    for (size_t o = 0; o < res.size(); ++o) outs[o].push_back(std::move(res[o]));
  }
  Objects result;
  for (size_t o = 0; o < outs.size(); ++o) {
    const auto& decl = body.values[body.outputs[o]].type;
    TensorType elem = decl ? *decl : TensorType{};
    if (!outs[o].empty()) elem = type_of(*outs[o][0]);
    result.push_back(sequence_object(std::move(outs[o]), std::move(elem)));
  }
  return result;
}

// ---- optionals ---------------------------------------------------------------------------------

Status infer_Optional(const Node& node, std::span<const TensorInfo* const> in,
                      std::vector<TensorInfo>& out) {
  const Attribute* t = node.attr("type");
  if ((in.empty() || !in[0]) && (!t || t->kind != Attribute::Kind::kType)) {
    return invalid_argument("{}: an empty Optional needs the 'type' attribute", node.label());
  }
  return infer_object_outputs(node, in, out);
}

Result<Objects> run_Optional(const Node& node, std::span<const ObjectPtr> in, SubgraphRunner&) {
  if (const Object* o = input(in, 0)) return Objects{optional_object(in[0], type_of(*o))};
  const Attribute* t = node.attr("type");
  if (!t || t->kind != Attribute::Kind::kType || !t->type) {
    return invalid_argument("{}: an empty Optional needs the 'type' attribute", node.label());
  }
  return Objects{optional_object(nullptr, *t->type)};
}

Result<Objects> run_OptionalHasElement(const Node&, std::span<const ObjectPtr> in,
                                       SubgraphRunner&) {
  const Object* o = input(in, 0);
  const bool has = o && (o->kind != Object::Kind::kOptional || !o->items.empty());
  return Objects{wrap(Tensor::from_vector<bool>({}, {has}))};
}

Result<Objects> run_OptionalGetElement(const Node& node, std::span<const ObjectPtr> in,
                                       SubgraphRunner&) {
  const Object* o = input(in, 0);
  if (!o) return invalid_argument("{}: input is missing", node.label());
  if (o->kind != Object::Kind::kOptional) return Objects{in[0]};  // opset 18: a plain value
  if (o->items.empty()) return invalid_argument("{}: the optional is empty", node.label());
  return Objects{o->items[0]};
}

Result<Objects> run_Identity(const Node& node, std::span<const ObjectPtr> in, SubgraphRunner&) {
  if (!input(in, 0)) return invalid_argument("{}: input is missing", node.label());
  return Objects{in[0]};
}

}  // namespace

std::vector<OpKernel> sequence_kernels() {
  return {object_kernel("SequenceEmpty", infer_SequenceEmpty, run_SequenceEmpty),
          object_kernel("SequenceConstruct", infer_object_outputs, run_SequenceConstruct),
          object_kernel("SequenceAt", infer_object_outputs, run_SequenceAt),
          object_kernel("SequenceInsert", infer_object_outputs, run_SequenceInsert),
          object_kernel("SequenceErase", infer_object_outputs, run_SequenceErase),
          object_kernel("SequenceLength", infer_object_outputs, run_SequenceLength),
          object_kernel("SplitToSequence", infer_object_outputs, run_SplitToSequence),
          object_kernel("ConcatFromSequence", infer_object_outputs, run_ConcatFromSequence),
          object_kernel("SequenceMap", infer_SequenceMap, run_SequenceMap),
          object_kernel("Optional", infer_Optional, run_Optional),
          object_kernel("OptionalHasElement", infer_object_outputs, run_OptionalHasElement),
          object_kernel("OptionalGetElement", infer_object_outputs, run_OptionalGetElement)};
}

// Identity of a sequence, optional or string tensor (registry.h: object_kernel_for).
OpKernel identity_object_kernel() {
  return object_kernel("Identity", infer_object_outputs, run_Identity);
}

}  // namespace moss::engine::ref
