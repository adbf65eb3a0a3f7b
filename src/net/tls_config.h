// TLS settings for servers and clients. TLS 1.3 is the only version either side speaks.
//
// Credentials come as PEM text (see tls_credentials.h to generate or load them); private keys
// only in SecretBytes. Values are move-only because they hold a key.
#pragma once

#include <string>

#include "common/secret_bytes.h"
#include "net/peer_identity.h"
#include "net/renewable_credentials.h"

namespace moss::net {

struct TlsServerConfig {
  std::string cert_chain_pem;  // leaf first, then intermediates
  SecretBytes key_pem;         // the leaf's private key
  // Instead of the two above: credentials replaced while the server runs (short-lived certificates).
  RenewableCredentialsPtr renewable;

  // Mutual TLS: when true, a client that presents no certificate fails the handshake.
  bool require_client_cert = false;
  // How client certificates are verified, when one is presented (at least one of the two is
  // required with require_client_cert). With both, the CA check runs first, then the hook.
  std::string client_ca_pem;  // PEM bundle of trusted CAs for client certificates
  PeerVerifier verify_peer;   // the hook (attested TLS); its identity reaches Request::peer
};

struct TlsClientConfig {
  // Server verification: a CA bundle (with host name check), the hook, or both (CA check first).
  // One of the two is required: there is no "verify nothing" mode.
  std::string ca_pem;
  bool verify_hostname = true;  // with ca_pem: the certificate must match the host (DNS or IP SAN)
  PeerVerifier verify_peer;

  // Optional client certificate for mutual TLS: fixed, or renewable (replaced while in use).
  std::string cert_chain_pem;
  SecretBytes key_pem;
  RenewableCredentialsPtr renewable;
};

}  // namespace moss::net
