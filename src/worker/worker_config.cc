#include "worker/worker_config.h"

#include "attest/attested_tls.h"
#include "common/file_util.h"
#include "common/strict_json.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <set>

namespace moss::worker {

namespace {

// Keys are written with '-' (docs/configuration.md); in a file and an /init value the snake_case
// names of docs/worker-api.md ("keyservice_url") mean the same keys.
std::vector<SettingSpec> settings() {
  return {
      {"worker.keyservice-url", SettingType::kString, "", "KeyService URL, https://host:port; replicas: several, comma-separated or a JSON array, tried in order with failover"},
      {"worker.keyservice-policy", SettingType::kString, "",
       "what the KeyService must be: a policy JSON file, or the JSON text", false, {}, /*json_object=*/true},
      {"worker.model-store", SettingType::kString, "",
       "encrypted models: a directory or an http(s) URL (<store>/<owner>/<name>.moss)"},
      {"worker.memory-budget-mb", SettingType::kInt, "0",
       "models plus execution contexts, MiB (0: 3/4 of the container memory limit)"},
      {"worker.key-ttl-s", SettingType::kInt, "300", "how long released keys are cached, seconds"},
      {"worker.max-concurrency", SettingType::kInt, "8", "requests served at once (more get 429)"},
      {"worker.tee", SettingType::kString, "auto", "evidence producer: sim, sgx-gramine, tsm, auto"},
      {"worker.sim-key-file", SettingType::kString, "", "simulated platform key file (simulated TEE)"},
      {"worker.sim-identity", SettingType::kString, "moss-worker", "simulated TEE identity string"},
      {"worker.allow-simulated", SettingType::kBool, "false",
       "accept a KeyService whose evidence is simulated (development only)"},
      {"worker.host", SettingType::kString, "0.0.0.0", "listen address"},
      {"worker.port", SettingType::kInt, "8080", "listen port (PORT is honoured too)", false, {"PORT"}},
      {"worker.intra-op-threads", SettingType::kInt, "1", "engine threads per request"},
      {"worker.max-model-mb", SettingType::kInt, "4096", "largest encrypted model file accepted, MiB"},
      {"worker.plan-cache-dir", SettingType::kString, "",
       "compiled-plan cache directory (default $TMPDIR/moss-worker-plan-cache; off: none)"},
      {"worker.certificate-lifetime", SettingType::kDuration, "6h",
       "lifetime of the worker's attested TLS certificate (renewed at half; at least 1m)"},
      {"worker.log-level", SettingType::kString, "info", "trace, debug, info, warn, error or off"},
  };
}

// Values of an /init body: strings as they are, numbers and booleans as written.
Result<std::string> json_value_text(const nlohmann::json& v, std::string_view name) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean() || v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (name == "keyservice_policy" && v.is_object()) return v.dump();  // inline policy object
  return invalid_argument("setting {}: expected a string, integer or boolean", name);
}

uint64_t container_memory_limit() {
  for (const char* path : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    auto text = read_text_file(path, 64);
    if (!text.ok()) continue;
    std::string t = *text;
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    if (t == "max" || t.empty()) continue;
    try {
      uint64_t v = std::stoull(t);
      if (v > 0 && v < (uint64_t{1} << 50)) return v;  // v1 reports ~2^63 for "no limit"
    } catch (...) {
    }
  }
  return 0;
}

}  // namespace

bool WorkerConfig::complete() const { return missing().empty(); }

std::string WorkerConfig::missing() const {
  if (keyservice_url.empty()) return "keyservice_url";
  if (keyservice_policy.empty()) return "keyservice_policy";
  if (model_store.empty()) return "model_store";
  return {};
}

Result<Config> make_worker_config() { return Config::create(settings(), "worker"); }

Result<Config> load_worker_settings(const std::string& config_file,
                                    const std::map<std::string, std::string>& flags,
                                    const EnvLookup& env) {
  MOSS_ASSIGN_OR_RETURN(Config config, make_worker_config());
  if (!config_file.empty()) MOSS_RETURN_IF_ERROR(config.load_file(config_file));
  MOSS_RETURN_IF_ERROR(env ? config.load_env(env) : config.load_env());
  for (const auto& [name, value] : flags) {
    const std::optional<std::string> key = config.key_for(name);
    if (!key) return invalid_argument("unknown setting '{}'", name);
    MOSS_RETURN_IF_ERROR(config.set_flag(*key, value, config.flag_name(*key)));
  }
  return config;
}

bool is_openwhisk_init_field(std::string_view name) {
  static const std::set<std::string, std::less<>> kOpenWhiskFields = {"name", "main", "code", "binary", "env"};
  return kOpenWhiskFields.contains(name);
}

Status apply_init_value(Config& settings, const nlohmann::json& value) {
  if (value.is_null()) return Status::Ok();
  if (!value.is_object()) return invalid_argument("/init: 'value' must be a JSON object");
  // What an unauthenticated /init may set. Not: host and port (the worker already listens); tee,
  // sim_key_file and sim_identity (how the worker proves what it is; a sim_key_file path would
  // even make it create files); allow_simulated (which KeyService it trusts); certificate_lifetime
  // (how long its attestation may be replayed).
  static const std::set<std::string, std::less<>> kInitSettings = {
      "worker.keyservice-url", "worker.keyservice-policy", "worker.model-store",
      "worker.memory-budget-mb", "worker.key-ttl-s", "worker.max-concurrency",
      "worker.intra-op-threads", "worker.max-model-mb"};
  // Names first, so a refused /init sets nothing. Only snake_case names: /init speaks the names
  // of docs/worker-api.md.
  for (const auto& [name, v] : value.items()) {
    if (is_openwhisk_init_field(name)) continue;
    const std::optional<std::string> key =
        name.find_first_of("-.") == std::string::npos ? settings.key_for(name) : std::nullopt;
    if (!key) return invalid_argument("/init: unknown setting {}", quote_input_name(name));
    if (!kInitSettings.contains(*key)) {
      return permission_denied("/init may not set '{}': give it as a flag or MOSS_WORKER_ environment variable",
                               name);
    }
  }
  for (const auto& [name, v] : value.items()) {
    if (is_openwhisk_init_field(name)) continue;
    MOSS_ASSIGN_OR_RETURN(std::string text, json_value_text(v, name));
    MOSS_RETURN_IF_ERROR(settings.set_flag(*settings.key_for(name), text, "/init value." + name));
  }
  return Status::Ok();
}

Result<WorkerConfig> worker_config_from(const Config& s) {
  WorkerConfig c;
  MOSS_ASSIGN_OR_RETURN(c.keyservice_url, s.get_string("worker.keyservice-url"));
  MOSS_ASSIGN_OR_RETURN(c.keyservice_policy, s.get_string("worker.keyservice-policy"));
  MOSS_ASSIGN_OR_RETURN(c.model_store, s.get_string("worker.model-store"));
  MOSS_ASSIGN_OR_RETURN(int64_t budget_mb, s.get_int("worker.memory-budget-mb"));
  MOSS_ASSIGN_OR_RETURN(int64_t ttl_s, s.get_int("worker.key-ttl-s"));
  MOSS_ASSIGN_OR_RETURN(int64_t concurrency, s.get_int("worker.max-concurrency"));
  MOSS_ASSIGN_OR_RETURN(c.tee, s.get_string("worker.tee"));
  MOSS_ASSIGN_OR_RETURN(c.sim_key_file, s.get_string("worker.sim-key-file"));
  MOSS_ASSIGN_OR_RETURN(c.sim_identity, s.get_string("worker.sim-identity"));
  MOSS_ASSIGN_OR_RETURN(c.allow_simulated, s.get_bool("worker.allow-simulated"));
  MOSS_ASSIGN_OR_RETURN(c.host, s.get_string("worker.host"));
  MOSS_ASSIGN_OR_RETURN(int64_t port, s.get_int("worker.port"));
  MOSS_ASSIGN_OR_RETURN(int64_t threads, s.get_int("worker.intra-op-threads"));
  MOSS_ASSIGN_OR_RETURN(int64_t max_model_mb, s.get_int("worker.max-model-mb"));
  MOSS_ASSIGN_OR_RETURN(c.plan_cache_dir, s.get_string("worker.plan-cache-dir"));
  MOSS_ASSIGN_OR_RETURN(auto lifetime, s.get_duration("worker.certificate-lifetime"));
  MOSS_ASSIGN_OR_RETURN(c.certificate_lifetime, attest::attested_certificate_lifetime(lifetime, "certificate_lifetime"));

  if (budget_mb < 0 || budget_mb > (int64_t{1} << 30)) {
    return invalid_argument("memory_budget_mb {} out of range", budget_mb);
  }
  if (ttl_s < 0 || ttl_s > 86'400) return invalid_argument("key_ttl_s {} not in [0, 86400]", ttl_s);
  if (concurrency < 1 || concurrency > 1024) {
    return invalid_argument("max_concurrency {} not in [1, 1024]", concurrency);
  }
  if (port < 0 || port > 65535) return invalid_argument("port {} not in [0, 65535]", port);
  if (threads < 1 || threads > 256) return invalid_argument("intra_op_threads {} not in [1, 256]", threads);
  if (max_model_mb < 1 || max_model_mb > (int64_t{1} << 20)) {
    return invalid_argument("max_model_mb {} out of range", max_model_mb);
  }
  static const std::set<std::string, std::less<>> kTees = {"sim", "sgx-gramine", "tsm", "auto"};
  if (!kTees.contains(c.tee)) return invalid_argument("tee '{}': expected sim, sgx-gramine, tsm or auto", c.tee);

  if (budget_mb == 0) {
    uint64_t limit = container_memory_limit();
    c.memory_budget_bytes = limit ? limit / 4 * 3 : uint64_t{4} << 30;
  } else {
    c.memory_budget_bytes = static_cast<uint64_t>(budget_mb) << 20;
  }
  c.key_ttl = std::chrono::seconds(ttl_s);
  c.max_concurrency = static_cast<size_t>(concurrency);
  c.port = static_cast<uint16_t>(port);
  c.intra_op_threads = static_cast<int>(threads);
  c.max_model_bytes = static_cast<uint64_t>(max_model_mb) << 20;
  if (c.plan_cache_dir == "off") {
    c.plan_cache_dir.clear();
  } else if (c.plan_cache_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    c.plan_cache_dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/moss-worker-plan-cache";
  }
  return c;
}

}  // namespace moss::worker
