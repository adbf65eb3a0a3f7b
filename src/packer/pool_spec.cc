#include "packer/pool_spec.h"

#include "common/strict_json.h"

#include <regex>

namespace moss::packer {

namespace {

using json = nlohmann::json;
using Json = nlohmann::ordered_json;

// A pool definition holds a few dozen keys; worker settings are short strings.
constexpr size_t kMaxWorkerConfigKeys = 64;
constexpr size_t kMaxText = 4096;

// Reads `key` into `out` when present: strings of at most `max_bytes`, integers in [lo, hi].
Status read_string(const Json& j, std::string_view key, std::string& out, size_t max_bytes = kMaxText) {
  MOSS_ASSIGN_OR_RETURN(out, string_field_or(j, key, max_bytes, std::move(out)));
  return Status::Ok();
}

template <typename T>
Status read_int(const Json& j, std::string_view key, T& out, int64_t lo, int64_t hi) {
  MOSS_ASSIGN_OR_RETURN(int64_t v, integer_field_or(j, key, lo, hi, static_cast<int64_t>(out)));
  out = static_cast<T>(v);
  return Status::Ok();
}

Status parse_openwhisk(const Json& j, OpenWhiskSpec& ow) {
  MOSS_RETURN_IF_ERROR(check_object_keys(j, {"api_host", "image"},
                                         {"namespace", "auth", "auth_file", "action_prefix",
                                          "timeout_ms", "ca_file"}));
  MOSS_RETURN_IF_ERROR(read_string(j, "api_host", ow.api_host));
  MOSS_RETURN_IF_ERROR(read_string(j, "namespace", ow.ns, 256));
  MOSS_RETURN_IF_ERROR(read_string(j, "auth", ow.auth, 1024));
  MOSS_RETURN_IF_ERROR(read_string(j, "auth_file", ow.auth_file));
  MOSS_RETURN_IF_ERROR(read_string(j, "image", ow.image, 1024));
  MOSS_RETURN_IF_ERROR(read_string(j, "action_prefix", ow.action_prefix, 128));
  MOSS_RETURN_IF_ERROR(read_int(j, "timeout_ms", ow.timeout_ms, 100, 3'600'000));
  MOSS_RETURN_IF_ERROR(read_string(j, "ca_file", ow.ca_file));
  static const std::regex kName("[A-Za-z0-9_@.-]{1,200}");
  if (ow.api_host.empty()) return invalid_argument("field 'api_host' must not be empty");
  if (ow.image.empty()) return invalid_argument("field 'image' must not be empty");
  if (ow.auth.empty() == ow.auth_file.empty()) {
    return invalid_argument("exactly one of auth and auth_file is required");
  }
  if (!std::regex_match(ow.ns, kName)) return invalid_argument("namespace is not a valid name");
  if (!ow.action_prefix.empty() && !std::regex_match(ow.action_prefix, kName)) {
    return invalid_argument("action_prefix is not a valid name");
  }
  return Status::Ok();
}

Status parse_worker_config(const Json& j, std::map<std::string, std::string>& out) {
  if (!j.contains("worker_config")) return Status::Ok();
  MOSS_ASSIGN_OR_RETURN(const Json* wc, object_field(j, "worker_config", kMaxWorkerConfigKeys));
  static const std::regex kKey("[a-z][a-z0-9_]{0,63}");
  for (const auto& [k, v] : wc->items()) {
    if (!std::regex_match(k, kKey)) return invalid_argument("worker_config key {} is not valid", quote_input_name(k));
    if (v.is_string()) {
      if (v.get_ref<const std::string&>().size() > kMaxText) {
        return invalid_argument("worker_config '{}' is longer than {} bytes", k, kMaxText);
      }
      out[k] = v.get<std::string>();
    } else if (v.is_boolean() || v.is_number()) {
      out[k] = v.dump();
    } else {
      return invalid_argument("worker_config '{}' must be a string, number or boolean", k);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<PoolSpec> parse_pool_spec(const Json& j) {
  MOSS_RETURN_IF_ERROR(check_object_keys(
      j, {"name"},
      {"backend", "policy", "worker_binary", "worker_config", "openwhisk", "max_concurrency",
       "parallelism", "memory_budget_mb", "pool_memory_budget_mb", "min_instances", "max_instances",
       "idle_timeout_s", "queue_timeout_ms", "request_timeout_ms", "stats_half_life_s"}).with_context("pool"));
  PoolSpec s;
  MOSS_ASSIGN_OR_RETURN(s.name, string_field(j, "name", 63));
  static const std::regex kPoolName("[a-z0-9][a-z0-9-]{0,62}");
  if (!std::regex_match(s.name, kPoolName)) {
    return invalid_argument("pool name '{}' must match [a-z0-9][a-z0-9-]{{0,62}}", s.name);
  }
  std::string backend(backend_kind_name(s.backend)), policy(policy_kind_name(s.policy));
  MOSS_RETURN_IF_ERROR(read_string(j, "backend", backend, 32));
  MOSS_RETURN_IF_ERROR(read_string(j, "policy", policy, 32));
  MOSS_ASSIGN_OR_RETURN(s.backend, parse_backend_kind(backend));
  MOSS_ASSIGN_OR_RETURN(s.policy, parse_policy_kind(policy));
  MOSS_RETURN_IF_ERROR(read_string(j, "worker_binary", s.worker_binary));
  MOSS_RETURN_IF_ERROR(read_int(j, "max_concurrency", s.max_concurrency, 1, 1000));
  MOSS_RETURN_IF_ERROR(read_int(j, "parallelism", s.parallelism, 1, 1024));
  MOSS_RETURN_IF_ERROR(read_int(j, "memory_budget_mb", s.memory_budget_mb, 16, 1 << 20));
  MOSS_RETURN_IF_ERROR(
      read_int(j, "pool_memory_budget_mb", s.pool_memory_budget_mb, 0, int64_t{1} << 30));
  MOSS_RETURN_IF_ERROR(read_int(j, "min_instances", s.min_instances, 0, 1000));
  MOSS_RETURN_IF_ERROR(read_int(j, "max_instances", s.max_instances, 1, 1000));
  MOSS_RETURN_IF_ERROR(read_int(j, "idle_timeout_s", s.idle_timeout_s, 1, 86'400));
  MOSS_RETURN_IF_ERROR(read_int(j, "queue_timeout_ms", s.queue_timeout_ms, 0, 3'600'000));
  MOSS_RETURN_IF_ERROR(read_int(j, "stats_half_life_s", s.stats_half_life_s, 1, 86'400));
  MOSS_RETURN_IF_ERROR(read_int(j, "request_timeout_ms", s.request_timeout_ms, 100, 3'600'000));
  if (s.min_instances > s.max_instances) {
    return invalid_argument("min_instances {} exceeds max_instances {}", s.min_instances,
                            s.max_instances);
  }
  MOSS_RETURN_IF_ERROR(parse_worker_config(j, s.worker_config));
  switch (s.backend) {
    case BackendKind::kLocal:
      if (s.worker_binary.empty()) return invalid_argument("a local pool needs 'worker_binary'");
      if (j.contains("openwhisk")) return invalid_argument("'openwhisk' is only for openwhisk pools");
      break;
    case BackendKind::kOpenWhisk:
      if (!j.contains("openwhisk")) return invalid_argument("an openwhisk pool needs 'openwhisk'");
      MOSS_RETURN_IF_ERROR(parse_openwhisk(j["openwhisk"], s.openwhisk).with_context("openwhisk"));
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
