#include "net/tls_context.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/ip/address.hpp>

#include "common/logging.h"
#include "common/ossl.h"
#include "net/connection_context.h"
#include "net/tls_credentials.h"

namespace moss::net::detail {
namespace {

// Configured PEM files (trusted, but bounded): certificates per chain or CA bundle, key size.
constexpr size_t kMaxCaCertificates = 1024;
constexpr size_t kMaxKeyPemBytes = 1 << 20;

int verify_state_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// The whole certificate verification of a handshake (SSL_CTX_set_cert_verify_callback): the CA
// chain check when configured, then the caller's hook. Returning 0 fails the handshake.
int verify_certificate(X509_STORE_CTX* store, void* arg) {
  const auto* tls = static_cast<const TlsContext*>(arg);
  SSL* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* state = ssl ? static_cast<PeerVerifyState*>(SSL_get_ex_data(ssl, verify_state_index())) : nullptr;
  if (state == nullptr) {  // a connection set up without attach_verify_state: fail closed
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  if (tls->use_ca && X509_verify_cert(store) <= 0) {
    state->error = fmt::format("peer certificate rejected: {}",
                               X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)));
    return 0;
  }
  if (!tls->hook) {
    state->verified = tls->use_ca;
    return tls->use_ca ? 1 : 0;
  }
  PeerCertificate cert;
  X509* leaf = X509_STORE_CTX_get0_cert(store);
  if (leaf == nullptr) {
    state->error = "peer sent no certificate";
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  cert.leaf_der = ossl::certificate_der(leaf);
  // Without a CA bundle OpenSSL checks no dates: the hook alone would accept a certificate that
  // expired long ago (or is not valid yet), so the validity window is checked here for every hook.
  if (Status valid = check_certificate_validity(cert.leaf_der, std::time(nullptr)); !valid.ok()) {
    state->error = fmt::format("peer certificate rejected: {}", valid.message());
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_HAS_EXPIRED);
    return 0;
  }
  if (auto validity = certificate_validity(cert.leaf_der); validity.ok()) state->not_after = validity->not_after;
  if (STACK_OF(X509)* chain = X509_STORE_CTX_get0_untrusted(store)) {
    for (int i = 0; i < sk_X509_num(chain); ++i) {
      X509* c = sk_X509_value(chain, i);
      if (X509_cmp(c, leaf) != 0) cert.chain_der.push_back(ossl::certificate_der(c));
    }
  }
  Result<std::shared_ptr<const PeerIdentity>> identity = internal_error("hook did not run");
  try {
    identity = tls->hook(cert);
  } catch (const std::exception& e) {
    identity = internal_error("peer-verification hook threw: {}", e.what());
  } catch (...) {
    identity = internal_error("peer-verification hook threw");
  }
  if (identity.ok() && *identity == nullptr) identity = internal_error("hook returned no identity");
  if (!identity.ok()) {
    state->error = fmt::format("peer certificate rejected: {}", identity.status().message());
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  state->identity = std::move(identity).value();
  state->verified = true;
  return 1;
}

Status use_cert_chain(SSL_CTX* ctx, const std::string& pem) {
  auto certs = ossl::parse_pem_chain(pem, kMaxChainCertificates);
  if (!certs.ok()) return certs.status().with_context("TLS certificate PEM");
  if (SSL_CTX_use_certificate(ctx, (*certs)[0].get()) != 1)
    return invalid_argument("TLS certificate not usable: {}", ossl_error_text());
  for (size_t i = 1; i < certs->size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx, (*certs)[i].get()) != 1)
      return invalid_argument("TLS chain certificate not usable: {}", ossl_error_text());
  }
  return Status::Ok();
}

Status use_private_key(SSL_CTX* ctx, const SecretBytes& pem) {
  auto key = ossl::read_private_key_pem(pem.span(), kMaxKeyPemBytes, "key");
  if (!key.ok()) return key.status().with_context("TLS private key");
  if (SSL_CTX_use_PrivateKey(ctx, key->get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ossl_clear();
    return invalid_argument("TLS private key does not match the certificate");
  }
  return Status::Ok();
}

Status load_ca_bundle(SSL_CTX* ctx, const std::string& pem) {
  auto certs = ossl::parse_pem_chain(pem, kMaxCaCertificates);
  if (!certs.ok()) return certs.status().with_context("CA bundle");
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (const auto& cert : *certs) {
    if (X509_STORE_add_cert(store, cert.get()) != 1)
      return invalid_argument("CA certificate not usable: {}", ossl_error_text());
  }
  return Status::Ok();
}

// SSL_CTX_set_cert_cb: runs in every handshake before the certificate is sent (server: after
// the ClientHello; client: when the server asks for one), so each handshake takes the latest
// generation of renewable credentials.
int select_renewable_certificate(SSL* ssl, void* arg) {
  return install_credentials(ssl, *static_cast<const RenewableCredentials*>(arg));
}

void use_renewable(SSL_CTX* ctx, TlsContext& tls, RenewableCredentialsPtr renewable) {
  tls.renewable = std::move(renewable);
  SSL_CTX_set_cert_cb(ctx, select_renewable_certificate, tls.renewable.get());
}

void restrict_to_tls13(SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  // No session resumption: a resumed session skips certificate verification, so the hook would
  // not run and the connection would carry no verified identity.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx, 0);
}

}  // namespace

Result<std::vector<uint8_t>> connection_exporter(SSL* ssl) {
  std::vector<uint8_t> out(kConnectionExporterBytes);
  const std::string_view label = kConnectionExporterLabel;
  // No context value (use_context 0): the label alone names MOSS's use (RFC 8446 §7.5).
  if (SSL_export_keying_material(ssl, out.data(), out.size(), label.data(), label.size(), nullptr, 0,
                                 0) != 1) {
    return ossl_error("TLS exporter");
  }
  return out;
}

std::vector<uint8_t> local_certificate_der(SSL* ssl) {
  X509* cert = SSL_get_certificate(ssl);
  return cert ? ossl::certificate_der(cert) : std::vector<uint8_t>{};
}

bool PeerVerifyState::peer_certificate_expired(std::time_t now) const {
  return not_after != 0 && now > not_after + static_cast<std::time_t>(kCertificateClockSkew.count());
}

void attach_verify_state(SSL* ssl, PeerVerifyState* state) {
  SSL_set_ex_data(ssl, verify_state_index(), state);
}

Result<TlsContextPtr> make_server_tls(const TlsServerConfig& config) {
  auto tls = std::make_unique<TlsContext>(boost::asio::ssl::context::tls_server);
  SSL_CTX* ctx = tls->ctx.native_handle();
  restrict_to_tls13(ctx);
  if (config.renewable) {
    use_renewable(ctx, *tls, config.renewable);
  } else {
    MOSS_RETURN_IF_ERROR(use_cert_chain(ctx, config.cert_chain_pem).with_context("server TLS"));
    MOSS_RETURN_IF_ERROR(use_private_key(ctx, config.key_pem).with_context("server TLS"));
  }
  if (!config.client_ca_pem.empty()) {
    MOSS_RETURN_IF_ERROR(load_ca_bundle(ctx, config.client_ca_pem).with_context("server TLS client CA"));
    tls->use_ca = true;
  }
  tls->hook = config.verify_peer;
  if (config.require_client_cert && !tls->use_ca && !tls->hook)
    return invalid_argument("server TLS: mutual TLS needs a client CA bundle or a verification hook");
  if (tls->use_ca || tls->hook) {
    int mode = SSL_VERIFY_PEER | (config.require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
    SSL_CTX_set_verify(ctx, mode, nullptr);
    SSL_CTX_set_cert_verify_callback(ctx, verify_certificate, tls.get());
  }
  return tls;
}

Result<TlsContextPtr> make_client_tls(const TlsClientConfig& config) {
  auto tls = std::make_unique<TlsContext>(boost::asio::ssl::context::tls_client);
  SSL_CTX* ctx = tls->ctx.native_handle();
  restrict_to_tls13(ctx);
  if (!config.ca_pem.empty()) {
    MOSS_RETURN_IF_ERROR(load_ca_bundle(ctx, config.ca_pem).with_context("client TLS"));
    tls->use_ca = true;
    tls->verify_hostname = config.verify_hostname;
  }
  tls->hook = config.verify_peer;
  if (!tls->use_ca && !tls->hook)
    return invalid_argument("client TLS: a CA bundle or a verification hook is required");
  if (config.renewable) {
    use_renewable(ctx, *tls, config.renewable);
  } else if (!config.cert_chain_pem.empty() || !config.key_pem.empty()) {
    MOSS_RETURN_IF_ERROR(use_cert_chain(ctx, config.cert_chain_pem).with_context("client TLS"));
    MOSS_RETURN_IF_ERROR(use_private_key(ctx, config.key_pem).with_context("client TLS"));
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_cert_verify_callback(ctx, verify_certificate, tls.get());
  return tls;
}

Status configure_client_ssl(SSL* ssl, const TlsContext& tls, const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  bool is_ip = !ec;
  // SNI carries DNS names only (RFC 6066).
  if (!is_ip && SSL_set_tlsext_host_name(ssl, host.c_str()) != 1)
    return invalid_argument("TLS: host name '{}' not usable for SNI", host);
  if (tls.use_ca && tls.verify_hostname) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                   : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
    if (ok != 1) return invalid_argument("TLS: cannot check the certificate against '{}'", host);
  }
  return Status::Ok();
}

}  // namespace moss::net::detail
