#include "client/client_config.h"

#include "common/file_util.h"
#include "common/strict_json.h"
#include "net/failover_client.h"

#include <cstdlib>
#include <set>

namespace moss::client {
namespace fs = std::filesystem;

namespace {

fs::path home_dir() {
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : ".");
}

fs::path anchor(const fs::path& base_dir, const std::string& value) {
  fs::path p(value);
  fs::path out = p.is_absolute() ? p : (base_dir / p).lexically_normal();
  // "." normalises to "dir/"; drop the trailing separator so paths compare and print cleanly.
  if (!out.has_filename() && out.has_parent_path() && out != out.root_path()) out = out.parent_path();
  return out;
}

}  // namespace

fs::path default_client_config_path() {
  if (const char* env = std::getenv(kClientConfigEnv); env && *env) return fs::path(env);
  return home_dir() / ".config" / "moss" / "client.json";
}

Result<ClientConfig> parse_client_config(std::string_view text, const fs::path& config_path) {
  MOSS_ASSIGN_OR_RETURN(auto j, parse_json_strict(text, "client config", 4));
  if (!j.is_object()) return invalid_argument("client config must be a JSON object");
  static const std::set<std::string> kKnown = {"keyservice_url", "keyservice_policy", "identity",
                                               "state_dir", "allow_simulated", "sim_key_file"};
  for (const auto& [key, value] : j.items()) {
    if (!kKnown.count(key)) return invalid_argument("client config: unknown key '{}'", key);
  }
  auto get_string = [&j](const char* key, bool required) -> Result<std::string> {
    auto it = j.find(key);
    if (it == j.end()) {
      if (required) return invalid_argument("client config: '{}' is required", key);
      return std::string();
    }
    if (!it->is_string() || it->get<std::string>().empty()) {
      return invalid_argument("client config: '{}' must be a non-empty string", key);
    }
    return it->get<std::string>();
  };
  const fs::path base = config_path.parent_path();
  ClientConfig c;
  c.config_path = config_path;
  // One URL, or the replicas' URLs: a JSON array or comma-separated (kept as the comma form).
  auto ks = j.find("keyservice_url");
  if (ks == j.end()) return invalid_argument("client config: 'keyservice_url' is required");
  auto urls = net::parse_url_list(ks->is_array() ? ks->dump() : ks->is_string() ? ks->get<std::string>() : "");
  if (!urls.ok()) return urls.status().with_context("client config: keyservice_url");
  for (const std::string& u : *urls) {
    if (u.rfind("https://", 0) != 0) {
      return invalid_argument("client config: keyservice_url must be https:// URLs, got '{}'", u);
    }
    c.keyservice_url += (c.keyservice_url.empty() ? "" : ",") + u;
  }
  MOSS_ASSIGN_OR_RETURN(auto policy, get_string("keyservice_policy", true));
  c.keyservice_policy = anchor(base, policy);
  MOSS_ASSIGN_OR_RETURN(auto identity, get_string("identity", true));
  c.identity = anchor(base, identity);
  MOSS_ASSIGN_OR_RETURN(auto state_dir, get_string("state_dir", true));
  c.state_dir = anchor(base, state_dir);
  if (auto it = j.find("allow_simulated"); it != j.end()) {
    if (!it->is_boolean()) return invalid_argument("client config: 'allow_simulated' must be a boolean");
    c.allow_simulated = it->get<bool>();
  }
  MOSS_ASSIGN_OR_RETURN(auto sim_key, get_string("sim_key_file", false));
  if (!sim_key.empty()) c.sim_key_file = anchor(base, sim_key);
  return c;
}

Result<ClientConfig> load_client_config(std::optional<fs::path> explicit_path) {
  fs::path path = explicit_path ? *explicit_path : default_client_config_path();
  std::error_code ec;
  fs::path absolute = fs::absolute(path, ec);
  if (ec) return invalid_argument("client config {}: {}", path.string(), ec.message());
  if (!fs::exists(absolute, ec)) {
    return not_found("client config {} does not exist (pass --config FILE or set {})",
                     absolute.string(), kClientConfigEnv);
  }
  MOSS_ASSIGN_OR_RETURN(auto text, read_text_file(absolute, kMaxClientConfigBytes));
  auto config = parse_client_config(text, absolute.lexically_normal());
  if (!config.ok()) return config.status().with_context(absolute.string());
  return config;
}

fs::path effective_sim_key_file(const ClientConfig& config) {
  if (!config.sim_key_file.empty()) return config.sim_key_file;
  if (const char* env = std::getenv("MOSS_SIM_KEY"); env && *env) return fs::path(env);
  return home_dir() / ".moss" / "sim-platform.key";
}

}  // namespace moss::client
