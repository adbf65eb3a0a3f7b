// The peer-verification hook: how a caller decides, with its own code, whether a TLS peer is
// acceptable (attested TLS, issue 4, verifies TEE evidence carried in a self-signed certificate).
//
// The hook runs inside the TLS handshake, on both the server (client certificates) and the client
// (server certificates). An error from the hook fails the handshake. The identity it returns is
// attached to the connection: servers hand it to handlers as Request::peer, clients expose it as
// Client::peer(). Derive from PeerIdentity to carry verified claims and read them back with
// dynamic_cast / std::dynamic_pointer_cast.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace moss::net {

// What the hook concluded about a peer. Immutable once returned; shared by every request of the
// connection. The base class carries a display name only (for logs); derived classes add claims.
struct PeerIdentity {
  virtual ~PeerIdentity() = default;
  std::string name;  // e.g. the certificate's common name or a principal id; never a secret
};

// The certificate a peer presented, as DER. Untrusted input: the hook must parse it defensively.
struct PeerCertificate {
  std::vector<uint8_t> leaf_der;                // the end-entity certificate
  std::vector<std::vector<uint8_t>> chain_der;  // further certificates the peer sent (may be empty)
};

// Must be thread-safe: a server calls it concurrently for different connections.
// The leaf's validity dates are always checked before the hook runs (with kCertificateClockSkew);
// the TLS library's CA check only when a CA bundle is also configured.
using PeerVerifier =
    std::function<Result<std::shared_ptr<const PeerIdentity>>(const PeerCertificate&)>;

}  // namespace moss::net
