// TensorBundle: an ordered set of uniquely named tensors plus string metadata.
//
// The plaintext of an inference request or response (named inputs in, named outputs out) and the
// in-memory form of a safetensors file. Order is kept as inserted, because files and responses
// should come out in a stable, predictable order. A value type: copyable, movable, not thread-safe.
#pragma once

#include "common/status.h"
#include "common/tensor.h"

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace moss {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

class TensorBundle {
 public:
  // Appends a tensor; fails with already-exists when the name is taken.
  Status add(std::string name, Tensor tensor);

  // nullptr when no tensor has that name. Linear in size(): bundles hold a handful of tensors.
  const Tensor* find(std::string_view name) const;
  Tensor* find(std::string_view name);

  // Removes and returns the named tensor (not-found when absent); lets callers move tensors out.
  Result<Tensor> take(std::string_view name);

  size_t size() const { return tensors_.size(); }
  bool empty() const { return tensors_.empty(); }
  const std::vector<NamedTensor>& tensors() const { return tensors_; }

  // Free-form string key/values (safetensors `__metadata__`).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::map<std::string, std::string>& mutable_metadata() { return metadata_; }

  // Total tensor payload in bytes.
  size_t payload_bytes() const;

 private:
  std::vector<NamedTensor> tensors_;
  std::map<std::string, std::string> metadata_;
  // Keeps add() O(log n) so a file with many tensors cannot make reading quadratic.
  std::set<std::string, std::less<>> names_;
};

}  // namespace moss
