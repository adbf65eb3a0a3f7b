// moss-packer: FnPacker, the untrusted gateway in front of the serverless platform. Thin: parses
// flags, loads the operator token (packer/operator_token.h) and the saved pools, serves the API
// until SIGINT/SIGTERM, then stops every pool (and so every local worker). See docs/packer.md.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "common/file_util.h"
#include "common/host_port.h"
#include "common/logging.h"
#include "common/service_main.h"
#include "net/server.h"
#include "packer/api_server.h"
#include "packer/operator_token.h"
#include "packer/pool_manager.h"

namespace fs = std::filesystem;
using namespace moss;

namespace {

int fail(const Status& s) { return exit_with_error("moss-packer", s); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"moss-packer: FnPacker, model-aware routing over serverless function pools"};
  std::string listen = "127.0.0.1:8088";
  std::string token_file, state_dir, log_level = "info", tls_cert, tls_key;
  size_t threads = 64;
  size_t max_body_mb = 4;
  app.add_option("--listen", listen, "host:port to serve the API on")
      ->envname("MOSS_PACKER_LISTEN")
      ->capture_default_str();
  app.add_option("--token-file", token_file, "operator bearer token file (created if missing)")
      ->envname("MOSS_PACKER_TOKEN_FILE")
      ->required();
  app.add_option("--state-dir", state_dir, "saved pools and worker logs")
      ->envname("MOSS_PACKER_STATE_DIR");
  app.add_option("--tls-cert", tls_cert, "PEM certificate chain: serve HTTPS")
      ->envname("MOSS_PACKER_TLS_CERT");
  app.add_option("--tls-key", tls_key, "PEM private key for --tls-cert")
      ->envname("MOSS_PACKER_TLS_KEY");
  app.add_option("--threads", threads, "request handler threads (each waiting request holds one)")
      ->envname("MOSS_PACKER_THREADS")
      ->capture_default_str()
      ->check(CLI::Range(4, 4096));
  app.add_option("--max-body-mb", max_body_mb, "largest request body")
      ->envname("MOSS_PACKER_MAX_BODY_MB")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->envname("MOSS_PACKER_LOG_LEVEL")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!log::set_level(log_level))
    return fail(invalid_argument("unknown log level '{}'", log_level));

  auto address = parse_host_port(listen);
  if (!address.ok()) return fail(address.status().with_context("--listen"));
  net::ServerOptions options;
  options.host = address->host;
  options.port = address->port;
  options.worker_threads = threads;
  options.max_body_bytes = max_body_mb * 1024 * 1024;
  options.read_timeout = std::chrono::seconds(60);
  options.write_timeout = std::chrono::seconds(60);
  options.name = "packer";
  if (tls_cert.empty() != tls_key.empty()) {
    return fail(invalid_argument("--tls-cert and --tls-key go together"));
  }
  if (!tls_cert.empty()) {
    net::TlsServerConfig tls;
    auto cert = read_text_file(tls_cert, 1024 * 1024);
    if (!cert.ok()) return fail(cert.status());
    auto key = read_secret_file(tls_key, 1024 * 1024);
    if (!key.ok()) return fail(key.status());
    tls.cert_chain_pem = std::move(*cert);
    tls.key_pem = std::move(*key);
    options.tls = std::move(tls);
  }
  if (!state_dir.empty()) {
    std::error_code ec;
    fs::create_directories(state_dir, ec);
    if (ec) return fail(internal_error("cannot create {}: {}", state_dir, ec.message()));
  }
  auto token = packer::load_or_create_operator_token(token_file);
  if (!token.ok()) return fail(token.status());

  StopSignals stop_signals;  // before any thread starts

  packer::SteadyClock clock;
  packer::PoolManager pools({.state_dir = state_dir}, clock);
  if (Status s = pools.load_state(); !s.ok()) return fail(s);
  auto server = net::Server::start(std::move(options), packer::make_api_router(pools, *token));
  if (!server.ok()) return fail(server.status());
  log::get("packer")->info("listening address={}:{} tls={}", address->host, (*server)->port(),
                           (*server)->tls());
  std::fprintf(stdout, "moss-packer listening on %s://%s:%u\n", (*server)->tls() ? "https" : "http",
               address->host.c_str(), (*server)->port());
  std::fflush(stdout);

  const int sig = stop_signals.wait();
  log::get("packer")->info("stopping signal={}", sig);
  (*server)->stop(std::chrono::seconds(5));
  pools.shutdown();
  return 0;
}
