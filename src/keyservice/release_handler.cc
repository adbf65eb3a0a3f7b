// POST /v1/release (contract C1): the only way key material leaves the KeyService; POST
// /v1/attest-connection, the fresh evidence a worker sends once per connection before it; and the
// worker's unsigned GET /v1/audit/head (its key client's fork check).
#include "attest/attested_tls.h"
#include "attest/connection_attestation.h"
#include "common/encoding.h"
#include "keyservice/request_body.h"
#include "keyservice/service.h"

namespace moss::keyservice {

net::Response KeyService::handle_release(const net::Request& req) {
  return answer("release", [&] {
    auto result = release(req);
    if (!result.ok() && (result.status().code() == ErrorCode::kPermissionDenied ||
                         result.status().code() == ErrorCode::kNotFound)) {
      metrics_.release_denied.fetch_add(1);
    }
    return result;
  });
}

Result<net::Response> KeyService::release(const net::Request& req) {
  // The server's client-certificate hook accepts only attested certificates made for the worker
  // purpose that meet the worker policy; a peer without one (a user, a plain client) has none.
  auto peer = std::dynamic_pointer_cast<const attest::AttestedPeerIdentity>(req.peer);
  if (!peer) {
    return refuse(ErrorCode::kUnauthenticated, "worker-attestation-required",
                  "key release needs an attested worker client certificate");
  }
  const std::string& measurement = peer->claims.measurement;
  if (!limiter_.allow("worker:" + hex_encode(peer->spki_sha256))) {
    metrics_.rate_limited.fetch_add(1);
    return refuse(ErrorCode::kResourceExhausted, "rate-limited", "too many requests; retry later");
  }
  // The certificate's evidence may be hours old (and replayed with a stolen key); key material
  // leaves only on a connection where the worker proved fresh evidence for this connection.
  auto fresh = attest::connection_attestation(req.connection);
  if (!fresh || fresh->spki_sha256 != peer->spki_sha256) {
    return refuse(ErrorCode::kUnauthenticated, "connection-not-attested",
                  "key release needs fresh evidence for this connection (POST /v1/attest-connection "
                  "first)");
  }
  MOSS_ASSIGN_OR_RETURN(auto body, parse_body(req.body, {"model_id", "user_id"}));
  MOSS_ASSIGN_OR_RETURN(std::string model_id, model_id_field(body, "model_id"));
  MOSS_ASSIGN_OR_RETURN(std::string user, principal_field(body, "user_id"));
  // The worker's identity in the audit: the hash of its attested certificate key (shortened).
  MOSS_ASSIGN_OR_RETURN(Release rel, state_.release(model_id, user, measurement,
                                                    hex_encode(peer->spki_sha256).substr(0, 32)));
  metrics_.releases.fetch_add(1);

  // Built by hand into one buffer reserved up front (no reallocation leaves a stray copy), so
  // every copy of key material is ours to wipe; ids and measurement need no JSON escaping.
  std::string out;
  out.reserve(512 + 96 * rel.model_keys.size());
  out += fmt::format(R"({{"model_id":"{}","user_id":"{}","measurement":"{}","model_keys":[)",
                     model_id, user, measurement);
  auto append_key = [&out](uint32_t version, const SecretBytes& key) {
    std::string b64 = base64_encode(key.span());
    out += R"({"version":)";
    out += std::to_string(version);
    out += R"(,"key":")";
    out += b64;
    out += R"("})";
    secure_wipe(b64);
  };
  for (size_t i = 0; i < rel.model_keys.size(); ++i) {
    if (i) out += ",";
    append_key(rel.model_keys[i].version, rel.model_keys[i].key);
  }
  out += R"(],"request_key":)";
  append_key(rel.request_key.version, rel.request_key.key);
  out += "}";
  auto response = net::Response::json(200, std::move(out));
  response.headers.set("Cache-Control", "no-store");
  return response;
}

net::Response KeyService::handle_attest_connection(const net::Request& req) {
  return answer("attest-connection", [&]() -> Result<net::Response> {
    auto peer = std::dynamic_pointer_cast<const attest::AttestedPeerIdentity>(req.peer);
    if (!peer) {
      return refuse(ErrorCode::kUnauthenticated, "worker-attestation-required",
                    "connection attestation needs an attested worker client certificate");
    }
    if (!limiter_.allow("worker:" + hex_encode(peer->spki_sha256))) {
      metrics_.rate_limited.fetch_add(1);
      return refuse(ErrorCode::kResourceExhausted, "rate-limited", "too many requests; retry later");
    }
    if (!connection_verifier_) {
      return refuse(ErrorCode::kFailedPrecondition, "connection-attestation-unavailable",
                    "this KeyService does not verify connection evidence");
    }
    auto verified = connection_verifier_->accept(req);
    if (!verified.ok()) {
      metrics_.connection_attestations_refused.fetch_add(1);
      return verified.status();
    }
    metrics_.connection_attestations.fetch_add(1);
    return net::Response::json(200, fmt::format(R"({{"attested":true,"measurement":"{}"}})",
                                                (*verified)->claims.measurement));
  });
}

net::Response KeyService::handle_worker_audit_head(const net::Request& req) {
  return answer("audit_head", [&]() -> Result<net::Response> {
    auto peer = std::dynamic_pointer_cast<const attest::AttestedPeerIdentity>(req.peer);
    if (!peer) {
      return refuse(ErrorCode::kUnauthenticated, "worker-attestation-required",
                    "an unsigned audit head needs an attested worker client certificate");
    }
    if (!limiter_.allow("worker:" + hex_encode(peer->spki_sha256))) {
      metrics_.rate_limited.fetch_add(1);
      return refuse(ErrorCode::kResourceExhausted, "rate-limited", "too many requests; retry later");
    }
    return audit_head("", req);
  });
}

}  // namespace moss::keyservice
