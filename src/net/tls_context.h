// INTERNAL to moss_net (includes Asio SSL): builds OpenSSL contexts from TlsServerConfig /
// TlsClientConfig and runs the peer-verification hook inside the handshake. Only server.cc,
// client.cc and tls_context.cc include this header.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "net/peer_identity.h"
#include "net/tls_config.h"

typedef struct ssl_st SSL;

namespace moss::net::detail {

// An SSL context plus what its verify callback needs. Immutable after creation; the callback gets
// a pointer to it, so it lives behind a unique_ptr and must outlive every connection using it.
struct TlsContext {
  explicit TlsContext(boost::asio::ssl::context::method m) : ctx(m) {}
  boost::asio::ssl::context ctx;
  bool use_ca = false;        // run OpenSSL's chain check against the configured CA bundle
  bool verify_hostname = false;
  PeerVerifier hook;          // may be empty
  RenewableCredentialsPtr renewable;  // may be null; kept alive for the certificate callback
};
using TlsContextPtr = std::unique_ptr<TlsContext>;

// The per-connection outcome of peer verification, attached to the SSL object with
// attach_verify_state before the handshake. Owned by the connection.
struct PeerVerifyState {
  std::shared_ptr<const PeerIdentity> identity;
  std::string error;  // why verification failed (empty if it did not run or passed)
  bool verified = false;
  std::time_t not_after = 0;  // the peer certificate's notAfter (hook path; 0: not recorded)

  // A keep-alive connection must not outlive the certificate it was verified with: true once the
  // peer's notAfter (plus the clock-skew allowance) has passed.
  bool peer_certificate_expired(std::time_t now) const;
};

Result<TlsContextPtr> make_server_tls(const TlsServerConfig& config);
Result<TlsContextPtr> make_client_tls(const TlsClientConfig& config);

// Must be called on every SSL object before its handshake; `state` must outlive the handshake.
void attach_verify_state(SSL* ssl, PeerVerifyState* state);

// Client connections: SNI for DNS names, and with CA checking the host-name/IP match.
Status configure_client_ssl(SSL* ssl, const TlsContext& tls, const std::string& host);

// Sets the current certificate, chain and key of `credentials` on a connection (1 on success).
int install_credentials(SSL* ssl, const RenewableCredentials& credentials);

// The connection's exporter value (kConnectionExporterLabel, kConnectionExporterBytes); only
// after a completed handshake.
Result<std::vector<uint8_t>> connection_exporter(SSL* ssl);
// The certificate this end presented on the connection (DER), or empty.
std::vector<uint8_t> local_certificate_der(SSL* ssl);

}  // namespace moss::net::detail
