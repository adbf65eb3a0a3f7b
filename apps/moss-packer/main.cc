// moss-packer: FnPacker, the untrusted gateway in front of the serverless platform. Thin: reads
// the configuration (packer/packer_settings.h: defaults < JSON file < MOSS_PACKER_* environment <
// flags), loads the operator token (packer/operator_token.h) and the saved pools, serves the API
// until SIGINT/SIGTERM, then stops every pool (and so every local worker). See docs/packer.md.
#include "common/logging.h"
#include "common/service_main.h"
#include "net/server.h"
#include "packer/api_server.h"
#include "packer/operator_token.h"
#include "packer/packer_settings.h"
#include "packer/pool_manager.h"

#include <cstdio>
#include <filesystem>

namespace fs = std::filesystem;
using namespace moss;

namespace {

int fail(const Status& s) { return exit_with_error("moss-packer", s); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"moss-packer: FnPacker, model-aware routing over serverless function pools"};
  auto config = packer::make_packer_config();
  if (!config.ok()) return fail(config.status());
  ConfigCommandLine command_line(app, *config);
  CLI11_PARSE(app, argc, argv);
  auto outcome = load_service_config(command_line, *config);
  if (!outcome.ok()) return fail(outcome.status());
  if (*outcome == ConfigOutcome::kPrinted) return 0;
  auto options = packer::packer_options_from(*config);
  if (!options.ok()) return fail(options.status());

  if (!options->pools.state_dir.empty()) {
    std::error_code ec;
    fs::create_directories(options->pools.state_dir, ec);
    if (ec) return fail(internal_error("cannot create {}: {}", options->pools.state_dir.string(), ec.message()));
  }
  auto token = packer::load_or_create_operator_token(options->token_file);
  if (!token.ok()) return fail(token.status());

  StopSignals stop_signals;  // before any thread starts

  packer::SteadyClock clock;
  packer::PoolManager pools(options->pools, clock);
  if (Status s = pools.load_state(); !s.ok()) return fail(s);
  const std::string host = options->server.host;
  auto server = net::Server::start(std::move(options->server), packer::make_api_router(pools, *token));
  if (!server.ok()) return fail(server.status());
  log::get("packer")->info("listening address={}:{} tls={}", host, (*server)->port(), (*server)->tls());
  std::fprintf(stdout, "moss-packer listening on %s://%s:%u\n", (*server)->tls() ? "https" : "http",
               host.c_str(), (*server)->port());
  std::fflush(stdout);

  const int sig = stop_signals.wait();
  log::get("packer")->info("stopping signal={}", sig);
  (*server)->stop(std::chrono::seconds(5));
  pools.shutdown();
  return 0;
}
