#include "client/seen_state_versions.h"

#include "common/file_util.h"
#include "common/strict_json.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <mutex>

namespace moss::client {
namespace fs = std::filesystem;

namespace {
std::mutex g_file_mu;

Result<nlohmann::ordered_json> load(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return nlohmann::ordered_json::object();
  MOSS_ASSIGN_OR_RETURN(std::string text, read_text_file(file, 1 << 20));
  MOSS_ASSIGN_OR_RETURN(auto j, parse_json_strict(text, file.string(), 4));
  if (!j.is_object()) return data_loss("{}: not a JSON object", file.string());
  return j;
}

int64_t version_in(const nlohmann::ordered_json& j, const std::string& url) {
  auto it = j.find(url);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}
}  // namespace

Result<int64_t> highest_seen_state_version(const fs::path& state_dir, const std::string& url) {
  if (state_dir.empty()) return int64_t{0};
  std::lock_guard lock(g_file_mu);
  MOSS_ASSIGN_OR_RETURN(auto j, load(state_dir / kSeenVersionsFile));
  return version_in(j, url);
}

Status check_and_record_state_version(const fs::path& state_dir, const std::string& url,
                                      int64_t floor, int64_t answered) {
  if (answered < floor) {
    return failed_precondition(
        "keyservice-rollback: the KeyService at {} answered with state version {}, older than "
        "version {} seen before: its state was rolled back (an older copy put back). Refusing it. "
        "If it was deliberately reset, remove its entry from {}",
        url, answered, floor, (state_dir / kSeenVersionsFile).string());
  }
  if (state_dir.empty()) return Status::Ok();
  std::lock_guard lock(g_file_mu);
  MOSS_ASSIGN_OR_RETURN(auto j, load(state_dir / kSeenVersionsFile));
  if (version_in(j, url) >= answered) return Status::Ok();
  j[url] = answered;
  std::error_code ec;
  fs::create_directories(state_dir, ec);  // the client's own directory; the write reports failure
  return write_text_file(state_dir / kSeenVersionsFile, j.dump(1) + "\n", 0600);
}

}  // namespace moss::client
