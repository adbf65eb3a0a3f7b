// moss-keyservice: holds model keys and request keys; releases them only to attested workers for
// granted (model, user, measurement). Thin: reads the configuration (defaults < JSON file <
// MOSS_KEYSERVICE_* environment < flags), starts a KeyServer, serves until SIGINT/SIGTERM.
// See docs/keyservice.md.
#include "attest/simulated.h"
#include "common/config.h"
#include "common/encoding.h"
#include "common/host_port.h"
#include "common/logging.h"
#include "common/service_main.h"
#include "keyservice/keyservice_server.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <tuple>

using namespace moss;

namespace {

const std::vector<SettingSpec> kSettings = {
    {"keyservice.listen", SettingType::kString, "127.0.0.1:7443", "host:port to serve HTTPS on"},
    {"keyservice.state-dir", SettingType::kString, std::nullopt, "database and (simulated TEE) sealing key"},
    {"keyservice.store", SettingType::kString, "sqlite", "state store: sqlite (state-dir/keyservice.db) or etcd (shared by replicas)"},
    {"keyservice.etcd-endpoints", SettingType::kString, "", "store=etcd: comma-separated member URLs, e.g. http://10.0.0.1:2379,http://10.0.0.2:2379"},
    {"keyservice.etcd-prefix", SettingType::kString, "/moss/keyservice/", "store=etcd: key prefix of this state (ends in /)"},
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
    {"keyservice.threads", SettingType::kInt, "8", "request handler threads"},
    {"keyservice.max-body", SettingType::kBytes, "64KiB", "largest request body (413 above)"},
    {"keyservice.request-window", SettingType::kDuration, "5m", "accepted clock skew of signed requests"},
    {"keyservice.certificate-lifetime", SettingType::kDuration, "6h", "lifetime of the attested TLS certificate (renewed at half)"},
    {"keyservice.rate-limit", SettingType::kInt, "50", "requests per second per principal (0: off)"},
    {"keyservice.rate-burst", SettingType::kInt, "100", "burst per principal"},
    {"keyservice.log-level", SettingType::kString, "info", "trace, debug, info, warn, error or off"},
};

int fail(const Status& s) { return exit_with_error("moss-keyservice", s); }

Result<std::pair<std::string, uint16_t>> host_port(const std::string& text, std::string_view setting) {
  auto parsed = parse_host_port(text);
  if (!parsed.ok()) return parsed.status().with_context(setting);
  return std::make_pair(std::move(parsed->host), parsed->port);
}

Result<keyservice::KeyServerOptions> options_from(const Config& c) {
  keyservice::KeyServerOptions o;
  MOSS_ASSIGN_OR_RETURN(std::string listen, c.get_string("keyservice.listen"));
  MOSS_ASSIGN_OR_RETURN(std::tie(o.host, o.port), host_port(listen, "listen"));
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
  MOSS_ASSIGN_OR_RETURN(o.join_url, c.get_string("keyservice.join"));
  MOSS_ASSIGN_OR_RETURN(std::string replica_listen, c.get_string("keyservice.replica-listen"));
  if (!replica_listen.empty()) {
    MOSS_ASSIGN_OR_RETURN(o.replica_listen, host_port(replica_listen, "replica-listen"));
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
  MOSS_ASSIGN_OR_RETURN(int64_t threads, c.get_int("keyservice.threads"));
  if (threads < 1 || threads > 256) return invalid_argument("threads must be 1..256");
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"moss-keyservice: attestation-gated key release (docs/keyservice.md)"};
  auto config = Config::create(kSettings);
  if (!config.ok()) return fail(config.status());
  std::string config_file;
  bool verify_audit = false;
  bool print_config = false;
  std::string recover_key, recovery_export;
  app.add_option("--config", config_file, "JSON configuration file (else $MOSS_CONFIG)");
  app.add_flag("--verify-audit", verify_audit,
               "verify the state (every row, the keyed audit chain, its sealed head) and exit");
  app.add_flag("--print-config", print_config, "print the effective configuration and exit");
  app.add_option("--recover", recover_key,
                 "store=etcd, after losing every replica: the operator's recovery private key "
                 "(PEM) that opens the state key's recovery export");
  app.add_option("--recovery-export", recovery_export,
                 "with --recover: the operator's copy of recovery.json (default: the one in etcd)");
  std::map<std::string, std::string> text;
  std::map<std::string, CLI::Option*> options;
  for (const auto& s : config->specs()) {
    // Flags drop the "keyservice." prefix: --listen, --state-dir, --worker-policy, ...
    std::string flag = "--" + config_flag_name(s.key.substr(s.key.find('.') + 1));
    if (s.type == SettingType::kBool) {
      options[s.key] = app.add_option(flag, text[s.key], s.help)->expected(0, 1)->default_str("true");
    } else {
      options[s.key] = app.add_option(flag, text[s.key], s.help);
    }
  }
  CLI11_PARSE(app, argc, argv);
  std::vector<std::pair<std::string, std::string>> given;  // key, value
  for (const auto& [key, opt] : options) {
    if (opt->count() > 0) given.emplace_back(key, text[key].empty() ? "true" : text[key]);
  }
  if (config_file.empty() && std::getenv("MOSS_CONFIG")) config_file = std::getenv("MOSS_CONFIG");
  if (!config_file.empty()) {
    if (Status s = config->load_file(config_file); !s.ok()) return fail(s);
  }
  if (Status s = config->load_env(); !s.ok()) return fail(s);
  for (const auto& [key, value] : given) {
    std::string flag = "--" + config_flag_name(key.substr(key.find('.') + 1));
    if (Status s = config->set_flag(key, value, flag); !s.ok()) return fail(s);
  }
  if (print_config) {
    std::printf("%s", config->dump().c_str());
    return 0;
  }
  if (Status s = config->validate(); !s.ok()) return fail(s);
  auto level = config->get_string("keyservice.log-level");
  if (!level.ok() || !log::set_level(*level)) return fail(invalid_argument("bad log level"));
  auto opts = options_from(*config);
  if (!opts.ok()) return fail(opts.status());
  opts->recover_private_key = recover_key;
  opts->recovery_export = recovery_export;

  if (verify_audit) {
    std::string kind = opts->producer.kind == "auto" ? "" : opts->producer.kind;
    auto state = keyservice::open_key_state(*opts, kind);
    if (!state.ok()) return fail(state.status());
    // Opening the state already checked every row, the keyed audit chain and its sealed head.
    auto head = (*state)->verify_audit();
    if (!head.ok()) return fail(head.status());
    std::printf("audit log verifies: %lld events, head %s, state version %lld\n",
                static_cast<long long>(head->seq), hex_encode(head->hash).c_str(),
                static_cast<long long>((*state)->state_version()));
    return 0;
  }

  StopSignals stop_signals;  // before any thread starts

  std::string host = opts->host;
  std::string replica_host = opts->replica_listen ? opts->replica_listen->first : "";
  auto server = keyservice::KeyServer::start(std::move(opts).value());
  if (!server.ok()) return fail(server.status());
  if ((*server)->replica_port() != 0) {
    std::printf("moss-keyservice replica port https://%s:%u\n", replica_host.c_str(),
                (*server)->replica_port());
  }
  std::printf("moss-keyservice listening on https://%s:%u (tee=%s%s)\n", host.c_str(),
              (*server)->port(), (*server)->producer_name().c_str(),
              (*server)->producer_name() == "sim" ? ", SIMULATED: no hardware protection" : "");
  std::fflush(stdout);
  const int sig = stop_signals.wait();
  log::get("keyservice")->info("stopping signal={}", sig);
  (*server)->stop(std::chrono::seconds(5));
  return 0;
}
