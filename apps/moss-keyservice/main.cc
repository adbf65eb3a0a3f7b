// moss-keyservice: holds model keys and request keys; releases them only to attested workers for
// granted (model, user, measurement). Thin: reads the configuration (keyservice/keyservice_settings.h:
// defaults < JSON file < MOSS_KEYSERVICE_* environment < flags), starts a KeyServer, serves until
// SIGINT/SIGTERM.
// See docs/keyservice.md.
#include "common/encoding.h"
#include "common/logging.h"
#include "common/service_main.h"
#include "keyservice/keyservice_server.h"
#include "keyservice/keyservice_settings.h"

#include <cstdio>

using namespace moss;

namespace {

int fail(const Status& s) { return exit_with_error("moss-keyservice", s); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"moss-keyservice: attestation-gated key release (docs/keyservice.md)"};
  auto config = keyservice::make_keyservice_config();
  if (!config.ok()) return fail(config.status());
  bool verify_audit = false;
  std::string recover_key, recovery_export;
  app.add_flag("--verify-audit", verify_audit,
               "verify the state (every row, the keyed audit chain, its sealed head) and exit");
  app.add_option("--recover", recover_key,
                 "store=etcd, after losing every replica: the operator's recovery private key "
                 "(PEM) that opens the state key's recovery export");
  app.add_option("--recovery-export", recovery_export,
                 "with --recover: the operator's copy of recovery.json (default: the one in etcd)");
  ConfigCommandLine command_line(app, *config, {keyservice::kLegacyConfigFileEnv});
  CLI11_PARSE(app, argc, argv);
  auto outcome = load_service_config(command_line, *config);
  if (!outcome.ok()) return fail(outcome.status());
  if (*outcome == ConfigOutcome::kPrinted) return 0;
  auto opts = keyservice::keyservice_options_from(*config);
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
