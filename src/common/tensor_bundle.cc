#include "common/tensor_bundle.h"

#include <algorithm>

namespace moss {

Status TensorBundle::add(std::string name, Tensor tensor) {
  if (!names_.insert(name).second) return already_exists("duplicate tensor name '{}'", name);
  tensors_.push_back({std::move(name), std::move(tensor)});
  return Status::Ok();
}

const Tensor* TensorBundle::find(std::string_view name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t.tensor;
  }
  return nullptr;
}

Tensor* TensorBundle::find(std::string_view name) {
  return const_cast<Tensor*>(static_cast<const TensorBundle*>(this)->find(name));
}

Result<Tensor> TensorBundle::take(std::string_view name) {
  auto it = std::find_if(tensors_.begin(), tensors_.end(),
                         [&](const NamedTensor& t) { return t.name == name; });
  if (it == tensors_.end()) return not_found("no tensor named '{}'", name);
  Tensor t = std::move(it->tensor);
  names_.erase(names_.find(name));
  tensors_.erase(it);
  return t;
}

size_t TensorBundle::payload_bytes() const {
  size_t n = 0;
  for (const auto& t : tensors_) n += t.tensor.nbytes();
  return n;
}

}  // namespace moss
