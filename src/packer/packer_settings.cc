#include "packer/packer_settings.h"

#include "common/file_util.h"
#include "common/host_port.h"

namespace moss::packer {

namespace {

std::vector<SettingSpec> settings() {
  return {
      {"packer.listen", SettingType::kString, "127.0.0.1:8088", "host:port to serve the API on"},
      {"packer.token-file", SettingType::kString, std::nullopt, "operator bearer token file (created if missing)"},
      {"packer.state-dir", SettingType::kString, "", "saved pools and worker logs (empty: nothing saved)"},
      {"packer.tls-cert", SettingType::kString, "", "PEM certificate chain: serve HTTPS"},
      {"packer.tls-key", SettingType::kString, "", "PEM private key for tls-cert"},
      {"packer.threads", SettingType::kInt, "64", "request handler threads, 4..4096 (each waiting request holds one)"},
      {"packer.max-body-mb", SettingType::kInt, "4", "largest request body, MiB, 1..64"},
      {"packer.log-level", SettingType::kString, "info", "trace, debug, info, warn, error or off"},
  };
}

Result<int64_t> int_in(const Config& c, std::string_view key, int64_t lo, int64_t hi) {
  MOSS_ASSIGN_OR_RETURN(int64_t v, c.get_int(key));
  if (v < lo || v > hi) {
    return invalid_argument("setting {}: {}: {} is not in [{}, {}]", key, *c.source_of(key), v, lo, hi);
  }
  return v;
}

}  // namespace

Result<Config> make_packer_config() { return Config::create(settings(), "packer"); }

Result<PackerOptions> packer_options_from(const Config& c) {
  PackerOptions o;
  MOSS_ASSIGN_OR_RETURN(std::string listen, c.get_string("packer.listen"));
  auto address = parse_host_port(listen);
  if (!address.ok()) return address.status().with_context("listen");
  o.server.host = address->host;
  o.server.port = address->port;
  MOSS_ASSIGN_OR_RETURN(int64_t threads, int_in(c, "packer.threads", 4, 4096));
  MOSS_ASSIGN_OR_RETURN(int64_t max_body_mb, int_in(c, "packer.max-body-mb", 1, 64));
  o.server.worker_threads = static_cast<size_t>(threads);
  o.server.max_body_bytes = static_cast<size_t>(max_body_mb) << 20;
  o.server.read_timeout = std::chrono::seconds(60);
  o.server.write_timeout = std::chrono::seconds(60);
  o.server.name = "packer";
  MOSS_ASSIGN_OR_RETURN(std::string tls_cert, c.get_string("packer.tls-cert"));
  MOSS_ASSIGN_OR_RETURN(std::string tls_key, c.get_string("packer.tls-key"));
  if (tls_cert.empty() != tls_key.empty()) return invalid_argument("tls-cert and tls-key go together");
  if (!tls_cert.empty()) {
    net::TlsServerConfig tls;
    MOSS_ASSIGN_OR_RETURN(tls.cert_chain_pem, read_text_file(tls_cert, 1024 * 1024));
    MOSS_ASSIGN_OR_RETURN(tls.key_pem, read_secret_file(tls_key, 1024 * 1024));
    o.server.tls = std::move(tls);
  }
  MOSS_ASSIGN_OR_RETURN(std::string token_file, c.get_string("packer.token-file"));
  o.token_file = token_file;
  MOSS_ASSIGN_OR_RETURN(std::string state_dir, c.get_string("packer.state-dir"));
  o.pools.state_dir = state_dir;
  return o;
}

}  // namespace moss::packer
