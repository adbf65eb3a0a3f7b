// ModelStore: where encrypted model files come from. The file for model `<owner>/<name>` is
// `<store>/<owner>/<name>.moss`, in a directory (a mounted volume) or under an http(s) URL.
//
// The store is untrusted (the operator controls it): files are size-bounded here and
// authenticated by decryption later. Model ids are validated before they become paths, so no id
// can leave the store. Thread-safe.
#pragma once

#include "common/status.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace moss::worker {

// The first bytes of a model file and its whole size (a compiled-plan cache hit checks only the
// header: which file the store holds now).
struct ModelFileHead {
  std::vector<uint8_t> bytes;
  uint64_t size = 0;
};

class ModelStore {
 public:
  virtual ~ModelStore() = default;
  // not-found when the store has no such file, unavailable when an HTTP store cannot be reached,
  // resource-exhausted when the file exceeds the size limit.
  virtual Result<std::vector<uint8_t>> fetch(std::string_view model_id) = 0;
  // At most `max_bytes` from the start of the file, with the same errors. This default fetches the
  // whole file; a directory reads only the head.
  virtual Result<ModelFileHead> fetch_head(std::string_view model_id, size_t max_bytes);
  virtual std::string describe() const = 0;
};

// `location`: a directory path, or an http:// or https:// URL (https verified against the
// system CA bundle). `max_bytes` bounds one model file.
Result<std::unique_ptr<ModelStore>> make_model_store(const std::string& location, uint64_t max_bytes);

}  // namespace moss::worker
