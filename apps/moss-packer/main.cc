// moss-packer: FnPacker, the untrusted gateway in front of the serverless platform. Thin: parses
// flags, loads the operator token and the saved pools, serves the API until SIGINT/SIGTERM, then
// stops every pool (and so every local worker). See docs/packer.md.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "common/encoding.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "crypto/random.h"
#include "net/server.h"
#include "packer/api_server.h"
#include "packer/pool_manager.h"

namespace fs = std::filesystem;
using namespace moss;

namespace {

int fail(const Status& s) {
  std::fprintf(stderr, "moss-packer: error: %s\n", s.to_string().c_str());
  return 1;
}

// The operator token: read from the file, or created there (0600) when it does not exist.
Result<std::string> load_token(const fs::path& path) {
  if (!fs::exists(path)) {
    MOSS_ASSIGN_OR_RETURN(SecretBytes token, crypto::random_secret(32));
    MOSS_RETURN_IF_ERROR(write_text_file(path, hex_encode(token.span()), 0600));
    log::get("packer")->info("created operator token file path={}", path.string());
  }
  MOSS_ASSIGN_OR_RETURN(std::string token, read_text_file(path, 4096));
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  if (token.size() < 16)
    return invalid_argument("token in {} is shorter than 16 characters", path.string());
  return token;
}

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

  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return fail(invalid_argument("--listen must be host:port"));
  net::ServerOptions options;
  options.host = listen.substr(0, colon);
  try {
    int port = std::stoi(listen.substr(colon + 1));
    if (port < 0 || port > 65535) throw std::out_of_range("port");
    options.port = static_cast<uint16_t>(port);
  } catch (const std::exception&) {
    return fail(invalid_argument("--listen port in '{}' is not a port number", listen));
  }
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
  auto token = load_token(token_file);
  if (!token.ok()) return fail(token.status());

  // Block the stop signals before any thread starts, so only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  packer::SteadyClock clock;
  packer::PoolManager pools({.state_dir = state_dir}, clock);
  if (Status s = pools.load_state(); !s.ok()) return fail(s);
  auto server = net::Server::start(std::move(options), packer::make_api_router(pools, *token));
  if (!server.ok()) return fail(server.status());
  log::get("packer")->info("listening address={}:{} tls={}", listen.substr(0, colon),
                           (*server)->port(), (*server)->tls());
  std::fprintf(stdout, "moss-packer listening on %s://%s:%u\n", (*server)->tls() ? "https" : "http",
               listen.substr(0, colon).c_str(), (*server)->port());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  log::get("packer")->info("stopping signal={}", sig);
  (*server)->stop(std::chrono::seconds(5));
  pools.shutdown();
  return 0;
}
