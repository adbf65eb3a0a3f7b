#include "packer/pool_spec.h"

#include <regex>
#include <set>

namespace moss::packer {

namespace {

using json = nlohmann::json;

Status check_keys(const json& j, const std::set<std::string>& allowed, std::string_view where) {
  if (!j.is_object()) return invalid_argument("{} must be a JSON object", where);
  for (const auto& [k, v] : j.items()) {
    if (!allowed.count(k)) return invalid_argument("{}: unknown key '{}'", where, k);
  }
  return Status::Ok();
}

Status get_string(const json& j, const char* key, std::string& out, size_t max_len = 4096) {
  if (!j.contains(key)) return Status::Ok();
  if (!j[key].is_string()) return invalid_argument("'{}' must be a string", key);
  out = j[key].get<std::string>();
  if (out.size() > max_len) return invalid_argument("'{}' is longer than {} bytes", key, max_len);
  return Status::Ok();
}

template <typename T>
Status get_int(const json& j, const char* key, T& out, int64_t lo, int64_t hi) {
  if (!j.contains(key)) return Status::Ok();
  if (!j[key].is_number_integer()) return invalid_argument("'{}' must be an integer", key);
  int64_t v = j[key].get<int64_t>();
  if (v < lo || v > hi) return out_of_range("'{}' = {} is outside [{}, {}]", key, v, lo, hi);
  out = static_cast<T>(v);
  return Status::Ok();
}

Status parse_openwhisk(const json& j, OpenWhiskSpec& ow) {
  MOSS_RETURN_IF_ERROR(check_keys(j,
                                  {"api_host", "namespace", "auth", "auth_file", "image",
                                   "action_prefix", "timeout_ms", "ca_file"},
                                  "openwhisk"));
  MOSS_RETURN_IF_ERROR(get_string(j, "api_host", ow.api_host));
  MOSS_RETURN_IF_ERROR(get_string(j, "namespace", ow.ns, 256));
  MOSS_RETURN_IF_ERROR(get_string(j, "auth", ow.auth, 1024));
  MOSS_RETURN_IF_ERROR(get_string(j, "auth_file", ow.auth_file));
  MOSS_RETURN_IF_ERROR(get_string(j, "image", ow.image, 1024));
  MOSS_RETURN_IF_ERROR(get_string(j, "action_prefix", ow.action_prefix, 128));
  MOSS_RETURN_IF_ERROR(get_int(j, "timeout_ms", ow.timeout_ms, 100, 3'600'000));
  MOSS_RETURN_IF_ERROR(get_string(j, "ca_file", ow.ca_file));
  static const std::regex kName("[A-Za-z0-9_@.-]{1,200}");
  if (ow.api_host.empty()) return invalid_argument("openwhisk.api_host is required");
  if (ow.image.empty()) return invalid_argument("openwhisk.image is required");
  if (ow.auth.empty() == ow.auth_file.empty()) {
    return invalid_argument("openwhisk: exactly one of auth and auth_file is required");
  }
  if (!std::regex_match(ow.ns, kName))
    return invalid_argument("openwhisk.namespace is not a valid name");
  if (!ow.action_prefix.empty() && !std::regex_match(ow.action_prefix, kName)) {
    return invalid_argument("openwhisk.action_prefix is not a valid name");
  }
  return Status::Ok();
}

}  // namespace

Result<PoolSpec> parse_pool_spec(const json& j) {
  MOSS_RETURN_IF_ERROR(check_keys(
      j,
      {"name", "backend", "policy", "worker_binary", "worker_config", "openwhisk",
       "max_concurrency", "parallelism", "memory_budget_mb", "pool_memory_budget_mb",
       "min_instances", "max_instances",
       "idle_timeout_s", "queue_timeout_ms", "request_timeout_ms", "stats_half_life_s"},
      "pool"));
  PoolSpec s;
  MOSS_RETURN_IF_ERROR(get_string(j, "name", s.name, 63));
  static const std::regex kPoolName("[a-z0-9][a-z0-9-]{0,62}");
  if (!std::regex_match(s.name, kPoolName)) {
    return invalid_argument("pool name '{}' must match [a-z0-9][a-z0-9-]{{0,62}}", s.name);
  }
  std::string backend(backend_kind_name(s.backend)), policy(policy_kind_name(s.policy));
  MOSS_RETURN_IF_ERROR(get_string(j, "backend", backend, 32));
  MOSS_RETURN_IF_ERROR(get_string(j, "policy", policy, 32));
  MOSS_ASSIGN_OR_RETURN(s.backend, parse_backend_kind(backend));
  MOSS_ASSIGN_OR_RETURN(s.policy, parse_policy_kind(policy));
  MOSS_RETURN_IF_ERROR(get_string(j, "worker_binary", s.worker_binary));
  MOSS_RETURN_IF_ERROR(get_int(j, "max_concurrency", s.max_concurrency, 1, 1000));
  MOSS_RETURN_IF_ERROR(get_int(j, "parallelism", s.parallelism, 1, 1024));
  MOSS_RETURN_IF_ERROR(get_int(j, "memory_budget_mb", s.memory_budget_mb, 16, 1 << 20));
  MOSS_RETURN_IF_ERROR(
      get_int(j, "pool_memory_budget_mb", s.pool_memory_budget_mb, 0, int64_t{1} << 30));
  MOSS_RETURN_IF_ERROR(get_int(j, "min_instances", s.min_instances, 0, 1000));
  MOSS_RETURN_IF_ERROR(get_int(j, "max_instances", s.max_instances, 1, 1000));
  MOSS_RETURN_IF_ERROR(get_int(j, "idle_timeout_s", s.idle_timeout_s, 1, 86'400));
  MOSS_RETURN_IF_ERROR(get_int(j, "queue_timeout_ms", s.queue_timeout_ms, 0, 3'600'000));
  MOSS_RETURN_IF_ERROR(get_int(j, "stats_half_life_s", s.stats_half_life_s, 1, 86'400));
  MOSS_RETURN_IF_ERROR(get_int(j, "request_timeout_ms", s.request_timeout_ms, 100, 3'600'000));
  if (s.min_instances > s.max_instances) {
    return invalid_argument("min_instances {} exceeds max_instances {}", s.min_instances,
                            s.max_instances);
  }
  if (j.contains("worker_config")) {
    const json& wc = j["worker_config"];
    if (!wc.is_object()) return invalid_argument("'worker_config' must be an object");
    static const std::regex kKey("[a-z][a-z0-9_]{0,63}");
    for (const auto& [k, v] : wc.items()) {
      if (!std::regex_match(k, kKey))
        return invalid_argument("worker_config key '{}' is not valid", k);
      if (v.is_string()) {
        s.worker_config[k] = v.get<std::string>();
      } else if (v.is_boolean() || v.is_number()) {
        s.worker_config[k] = v.dump();
      } else {
        return invalid_argument("worker_config '{}' must be a string, number or boolean", k);
      }
    }
  }
  switch (s.backend) {
    case BackendKind::kLocal:
      if (s.worker_binary.empty()) return invalid_argument("a local pool needs 'worker_binary'");
      if (j.contains("openwhisk")) return invalid_argument("'openwhisk' is only for openwhisk pools");
      break;
    case BackendKind::kOpenWhisk:
      if (!j.contains("openwhisk")) return invalid_argument("an openwhisk pool needs 'openwhisk'");
      MOSS_RETURN_IF_ERROR(parse_openwhisk(j["openwhisk"], s.openwhisk));
      if (s.openwhisk.action_prefix.empty()) s.openwhisk.action_prefix = "moss-" + s.name;
      break;
  }
  return s;
}

nlohmann::json PoolSpec::to_json(bool include_secrets) const {
  json j = {{"name", name},
            {"backend", backend_kind_name(backend)},
            {"policy", policy_kind_name(policy)},
            {"worker_config", worker_config},
            {"max_concurrency", max_concurrency},
            {"parallelism", parallelism},
            {"memory_budget_mb", memory_budget_mb},
            {"pool_memory_budget_mb", pool_memory_budget_mb},
            {"min_instances", min_instances},
            {"max_instances", max_instances},
            {"idle_timeout_s", idle_timeout_s},
            {"queue_timeout_ms", queue_timeout_ms},
            {"stats_half_life_s", stats_half_life_s},
            {"request_timeout_ms", request_timeout_ms}};
  if (backend == BackendKind::kLocal) j["worker_binary"] = worker_binary;
  if (backend == BackendKind::kOpenWhisk) {
    j["openwhisk"] = {{"api_host", openwhisk.api_host},
                      {"namespace", openwhisk.ns},
                      {"image", openwhisk.image},
                      {"action_prefix", openwhisk.action_prefix},
                      {"timeout_ms", openwhisk.timeout_ms}};
    if (!openwhisk.auth_file.empty()) j["openwhisk"]["auth_file"] = openwhisk.auth_file;
    if (!openwhisk.ca_file.empty()) j["openwhisk"]["ca_file"] = openwhisk.ca_file;
    if (include_secrets && !openwhisk.auth.empty()) j["openwhisk"]["auth"] = openwhisk.auth;
  }
  return j;
}

}  // namespace moss::packer
