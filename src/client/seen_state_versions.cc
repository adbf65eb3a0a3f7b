#include "client/seen_state_versions.h"

#include "common/encoding.h"
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

// An entry: a bare integer (version only) or the record object. Anything else counts as nothing
// seen, as it always did; a record object with a malformed field is refused (it was written by a
// client of this format, so it was edited).
Result<crypto::SeenKeyServiceState> entry_in(const nlohmann::ordered_json& j, const std::string& url,
                                             const fs::path& file) {
  crypto::SeenKeyServiceState s;
  auto it = j.find(url);
  if (it == j.end()) return s;
  if (it->is_number_integer()) {
    s.version = std::max<int64_t>(0, it->get<int64_t>());
    return s;
  }
  if (!it->is_object()) return s;
  auto bad = [&] { return data_loss("{}: malformed entry for {}", file.string(), url); };
  const auto& e = *it;
  if (!e.contains("state_version") || !e["state_version"].is_number_integer() ||
      !e.contains("audit_seq") || !e["audit_seq"].is_number_integer() ||
      !e.contains("audit_hash") || !e["audit_hash"].is_string()) {
    return bad();
  }
  s.version = e["state_version"].get<int64_t>();
  s.audit_seq = e["audit_seq"].get<int64_t>();
  auto hash = hex_decode(e["audit_hash"].get<std::string>(), 32);
  if (s.version < 0 || s.audit_seq < 0 || !hash.ok() || hash->size() != 32) return bad();
  std::copy(hash->begin(), hash->end(), s.audit_hash.begin());
  if (e.contains("keyservice_key")) {
    if (!e["keyservice_key"].is_string()) return bad();
    s.keyservice_key = e["keyservice_key"].get<std::string>();
  }
  return s;
}
}  // namespace

Result<crypto::SeenKeyServiceState> seen_keyservice_state(const fs::path& state_dir,
                                                          const std::string& url) {
  if (state_dir.empty()) return crypto::SeenKeyServiceState{};
  std::lock_guard lock(g_file_mu);
  fs::path file = state_dir / kSeenVersionsFile;
  MOSS_ASSIGN_OR_RETURN(auto j, load(file));
  return entry_in(j, url, file);
}

Status record_keyservice_state(const fs::path& state_dir, const std::string& url,
                               const crypto::SeenKeyServiceState& seen) {
  if (state_dir.empty()) return Status::Ok();
  std::lock_guard lock(g_file_mu);
  fs::path file = state_dir / kSeenVersionsFile;
  MOSS_ASSIGN_OR_RETURN(auto j, load(file));
  auto old = entry_in(j, url, file);
  if (old.ok() && (old->version > seen.version ||
                   (old->version == seen.version && old->audit_seq == seen.audit_seq &&
                    old->audit_hash == seen.audit_hash && old->keyservice_key == seen.keyservice_key))) {
    return Status::Ok();
  }
  nlohmann::ordered_json e = {{"state_version", seen.version}};
  if (seen.audit_seq >= 0) {
    e["audit_seq"] = seen.audit_seq;
    e["audit_hash"] = hex_encode(seen.audit_hash);
    if (!seen.keyservice_key.empty()) e["keyservice_key"] = seen.keyservice_key;
    j[url] = std::move(e);
  } else {
    j[url] = seen.version;  // no head known: the version-only form
  }
  std::error_code ec;
  fs::create_directories(state_dir, ec);  // the client's own directory; the write reports failure
  return write_text_file(file, j.dump(1) + "\n", 0600);
}

Status with_forget_hint(Status refusal, const fs::path& state_dir, const std::string& url) {
  if (refusal.ok()) return refusal;
  std::string where = state_dir.empty()
                          ? std::string("restart the client")
                          : fmt::format("remove its entry from {}", (state_dir / kSeenVersionsFile).string());
  return Status(refusal.code(),
                fmt::format("{}. If {} was deliberately reset, {}", refusal.message(), url, where));
}

}  // namespace moss::client
