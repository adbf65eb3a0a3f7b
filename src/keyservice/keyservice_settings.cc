#include "keyservice/keyservice_settings.h"

#include "attest/attested_tls.h"

#include <algorithm>

namespace moss::keyservice {

namespace {

// keyservice.etcd-timeout's bounds: below, calls fail under ordinary load; above, one hung member
// holds every call (and the client waiting on it) that long before the next member is tried.
constexpr std::chrono::milliseconds kMinEtcdTimeout{100};
constexpr std::chrono::milliseconds kMaxEtcdTimeout{60'000};

std::vector<SettingSpec> settings() {
  return {
      {"keyservice.listen", SettingType::kString, "127.0.0.1:7443", "host:port to serve HTTPS on"},
      {"keyservice.state-dir", SettingType::kString, std::nullopt, "database and (simulated TEE) sealing key"},
      {"keyservice.store", SettingType::kString, "sqlite", "state store: sqlite (state-dir/keyservice.db) or etcd (shared by replicas)"},
      {"keyservice.etcd-endpoints", SettingType::kString, "", "store=etcd: comma-separated member URLs, e.g. http://10.0.0.1:2379,http://10.0.0.2:2379"},
      {"keyservice.etcd-prefix", SettingType::kString, "/moss/keyservice/", "store=etcd: key prefix of this state (ends in /)"},
      {"keyservice.etcd-timeout", SettingType::kDuration, format_duration(store::EtcdClientOptions{}.timeout),
       fmt::format("store=etcd: connect and per-call timeout of each etcd request, {}..{}",
                   format_duration(kMinEtcdTimeout), format_duration(kMaxEtcdTimeout))},
      {"keyservice.join", SettingType::kString, "", "store=etcd: https://host:port of a running replica's replica port, to obtain the state key from"},
      {"keyservice.replica-listen", SettingType::kString, "", "store=etcd: host:port of the replica port (other replicas join here)"},
      {"keyservice.replica-policy", SettingType::kString, "", "store=etcd: attestation policy other replicas must meet (JSON file), both ways"},
      {"keyservice.recovery-public-key", SettingType::kString, "", "store=etcd: the operator's RSA recovery public key (PEM); the first replica seals the state key to it"},
      {"keyservice.tee", SettingType::kString, "auto", "evidence producer: auto, sgx-gramine, tsm or sim"},
      {"keyservice.sim", SettingType::kBool, "false", "allow the simulated TEE for our own evidence (tee=auto falls back to sim)"},
      {"keyservice.sim-key-file", SettingType::kString, "", "simulated platform key (tee=sim)"},
      {"keyservice.sim-identity", SettingType::kString, "moss-keyservice", "simulated identity string"},
      {"keyservice.sealing", SettingType::kString, "auto", "sealing key source: auto, gramine or file"},
      {"keyservice.sealing-key-file", SettingType::kString, "", "sealing key file (sealing=file)"},
      {"keyservice.worker-policy", SettingType::kString, std::nullopt, "attestation policy workers must meet (JSON file)"},
      {"keyservice.allow-simulated", SettingType::kBool, "false", "accept simulated worker evidence (policy must allow it too)"},
      {"keyservice.worker-sim-key-file", SettingType::kString, "", "simulated platform key of workers (default: sim-key-file)"},
      {"keyservice.collateral-dir", SettingType::kString, "", "DCAP collateral for worker quotes"},
      {"keyservice.threads", SettingType::kInt, "8", "request handler threads, 1..256"},
      {"keyservice.max-body", SettingType::kBytes, "64KiB", "largest request body (413 above)"},
      {"keyservice.request-window", SettingType::kDuration, "5m", "accepted clock skew of signed requests"},
      {"keyservice.certificate-lifetime", SettingType::kDuration, "6h", "lifetime of the attested TLS certificate (renewed at half)"},
      {"keyservice.rate-limit", SettingType::kInt, "50", "requests per second per principal (0: off)"},
      {"keyservice.rate-burst", SettingType::kInt, "100", "burst per principal"},
      {"keyservice.log-level", SettingType::kString, "info", "trace, debug, info, warn, error or off"},
  };
}

}  // namespace

Result<Config> make_keyservice_config() { return Config::create(settings(), "keyservice"); }

Result<KeyServerOptions> keyservice_options_from(const Config& c) {
  KeyServerOptions o;
  MOSS_ASSIGN_OR_RETURN(HostPort listen, c.get_host_port("keyservice.listen"));
  o.host = std::move(listen.host);
  o.port = listen.port;
  MOSS_ASSIGN_OR_RETURN(std::string state_dir, c.get_string("keyservice.state-dir"));
  o.state_dir = state_dir;
  MOSS_ASSIGN_OR_RETURN(o.store, c.get_string("keyservice.store"));
  MOSS_ASSIGN_OR_RETURN(std::string endpoints, c.get_string("keyservice.etcd-endpoints"));
  for (size_t at = 0; at < endpoints.size();) {
    size_t comma = std::min(endpoints.find(',', at), endpoints.size());
    if (comma > at) o.etcd_endpoints.push_back(endpoints.substr(at, comma - at));
    at = comma + 1;
  }
  if (o.store == "etcd" && o.etcd_endpoints.empty()) {
    return invalid_argument("store=etcd needs etcd-endpoints");
  }
  MOSS_ASSIGN_OR_RETURN(o.etcd_prefix, c.get_string("keyservice.etcd-prefix"));
  MOSS_ASSIGN_OR_RETURN(o.etcd_timeout,
                        c.get_duration_in("keyservice.etcd-timeout", kMinEtcdTimeout, kMaxEtcdTimeout));
  MOSS_ASSIGN_OR_RETURN(o.join_url, c.get_string("keyservice.join"));
  MOSS_ASSIGN_OR_RETURN(std::string replica_listen, c.get_string("keyservice.replica-listen"));
  if (!replica_listen.empty()) {
    MOSS_ASSIGN_OR_RETURN(HostPort replica, c.get_host_port("keyservice.replica-listen"));
    o.replica_listen = std::make_pair(std::move(replica.host), replica.port);
  }
  MOSS_ASSIGN_OR_RETURN(std::string replica_policy, c.get_string("keyservice.replica-policy"));
  if (!replica_policy.empty()) {
    MOSS_ASSIGN_OR_RETURN(o.replica_policy, attest::Policy::load(replica_policy));
  }
  MOSS_ASSIGN_OR_RETURN(std::string recovery_public_key, c.get_string("keyservice.recovery-public-key"));
  o.recovery_public_key = recovery_public_key;
  MOSS_ASSIGN_OR_RETURN(o.producer.kind, c.get_string("keyservice.tee"));
  MOSS_ASSIGN_OR_RETURN(o.producer.allow_simulated_fallback, c.get_bool("keyservice.sim"));
  MOSS_ASSIGN_OR_RETURN(std::string sim_key, c.get_string("keyservice.sim-key-file"));
  o.producer.sim_key_file = sim_key;
  MOSS_ASSIGN_OR_RETURN(o.producer.sim_identity, c.get_string("keyservice.sim-identity"));
  MOSS_ASSIGN_OR_RETURN(o.sealing, c.get_string("keyservice.sealing"));
  MOSS_ASSIGN_OR_RETURN(std::string sealing_file, c.get_string("keyservice.sealing-key-file"));
  o.sealing_key_file = sealing_file;
  MOSS_ASSIGN_OR_RETURN(std::string policy, c.get_string("keyservice.worker-policy"));
  MOSS_ASSIGN_OR_RETURN(o.worker_policy, attest::Policy::load(policy));
  MOSS_ASSIGN_OR_RETURN(o.allow_simulated_workers, c.get_bool("keyservice.allow-simulated"));
  MOSS_ASSIGN_OR_RETURN(std::string worker_sim, c.get_string("keyservice.worker-sim-key-file"));
  o.worker_sim_key_file = worker_sim;
  MOSS_ASSIGN_OR_RETURN(std::string collateral, c.get_string("keyservice.collateral-dir"));
  o.collateral_dir = collateral;
  MOSS_ASSIGN_OR_RETURN(int64_t threads, c.get_int_in("keyservice.threads", 1, 256));
  o.worker_threads = static_cast<size_t>(threads);
  MOSS_ASSIGN_OR_RETURN(uint64_t max_body, c.get_bytes("keyservice.max-body"));
  o.max_body_bytes = max_body;
  MOSS_ASSIGN_OR_RETURN(auto window, c.get_duration("keyservice.request-window"));
  o.service.request_window_s = std::max<int64_t>(1, window.count() / 1000);
  MOSS_ASSIGN_OR_RETURN(auto lifetime, c.get_duration("keyservice.certificate-lifetime"));
  MOSS_ASSIGN_OR_RETURN(o.certificate_lifetime, attest::attested_certificate_lifetime(lifetime, "certificate-lifetime"));
  MOSS_ASSIGN_OR_RETURN(int64_t rate, c.get_int("keyservice.rate-limit"));
  MOSS_ASSIGN_OR_RETURN(int64_t burst, c.get_int("keyservice.rate-burst"));
  o.service.rate_per_s = static_cast<double>(rate);
  o.service.rate_burst = static_cast<double>(std::max<int64_t>(1, burst));
  return o;
}


}  // namespace moss::keyservice
