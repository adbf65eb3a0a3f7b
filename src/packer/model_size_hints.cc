#include "packer/model_size_hints.h"

#include <filesystem>
#include <system_error>

#include "protocol/ids.h"

namespace moss::packer {

namespace {
constexpr size_t kMaxCached = 65'536;  // models; the cache starts over beyond it
}

ModelSizeHints::ModelSizeHints(std::string store) {
  const bool http = store.rfind("http://", 0) == 0 || store.rfind("https://", 0) == 0;
  if (!http) dir_ = std::move(store);
}

std::optional<uint64_t> ModelSizeHints::get(std::string_view model_id) {
  if (dir_.empty() || !protocol::validate_model_id(model_id).ok()) return std::nullopt;
  {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(model_id); it != cache_.end()) return it->second;
  }
  // Validated above: `<owner>/<name>` cannot leave the store directory.
  std::error_code ec;
  const auto path = std::filesystem::path(dir_) / (std::string(model_id) + ".moss");
  const uintmax_t size = std::filesystem::file_size(path, ec);
  std::optional<uint64_t> hint;
  if (!ec && size > 0) hint = static_cast<uint64_t>(size);
  std::lock_guard lock(mu_);
  if (cache_.size() >= kMaxCached) cache_.clear();
  cache_.emplace(std::string(model_id), hint);
  return hint;
}

}  // namespace moss::packer
