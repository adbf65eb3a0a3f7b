// ModelSizeHints: a model's size before its first load, from the model store's metadata.
//
// The memory check of a switch needs the model's weights + arena; the worker reports them only
// after it has loaded the model once, so a model's first placement used to be blind (size 0: fits
// anywhere). When the pool's workers read models from a directory (worker_config.model_store), the
// encrypted file's size there is a lower bound of the weights known at once (a stat, no read);
// the worker's report replaces it after the first load. HTTP stores give no hint (no I/O to them
// from the packer). Lookups happen outside the pool lock; results are cached (bounded).
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace moss::packer {

class ModelSizeHints {
 public:
  // `store`: the workers' model_store setting ("" or an http(s) URL: no hints).
  explicit ModelSizeHints(std::string store);
  // The size of `<store>/<owner>/<name>.moss`, or nullopt (no directory store, invalid id, no
  // such file).
  std::optional<uint64_t> get(std::string_view model_id);

 private:
  std::string dir_;  // empty: no hints
  std::mutex mu_;
  std::map<std::string, std::optional<uint64_t>, std::less<>> cache_;  // guarded by mu_
};

}  // namespace moss::packer
