#include "attest/connection_attestation.h"

#include "common/sha256.h"
#include "net/error_response.h"
#include "net/http_message.h"
#include "net/tls_credentials.h"

namespace moss::attest {
namespace {

constexpr std::string_view kConnectionDomain = "moss-connection-attestation-v1";

}  // namespace

std::array<uint8_t, 64> connection_report_data(std::span<const uint8_t> exporter,
                                               const std::array<uint8_t, 32>& spki_sha256,
                                               std::string_view purpose) {
  std::vector<uint8_t> bound(kConnectionDomain.begin(), kConnectionDomain.end());
  bound.push_back(0);
  bound.insert(bound.end(), exporter.begin(), exporter.end());
  bound.insert(bound.end(), spki_sha256.begin(), spki_sha256.end());
  // The second half is the certificate's purpose binding; the first half replaces the SPKI hash
  // with a hash over a distinct domain, so certificate evidence never passes as connection
  // evidence (and the reverse).
  std::array<uint8_t, 64> rd = attested_tls_report_data(spki_sha256, purpose);
  auto first = sha256(bound);
  std::copy(first.begin(), first.end(), rd.begin());
  return rd;
}

net::ConnectHook make_connection_attestation_hook(std::shared_ptr<EvidenceProducer> producer,
                                                  std::string purpose, std::string path) {
  return [producer = std::move(producer), purpose = std::move(purpose),
          path = std::move(path)](const net::NewConnection& c) -> Status {
    if (c.tls_exporter.size() != net::kConnectionExporterBytes)
      return failed_precondition("connection attestation needs a TLS connection");
    if (c.local_certificate_der.empty())
      return failed_precondition("connection attestation needs a client certificate");
    MOSS_ASSIGN_OR_RETURN(auto spki, net::certificate_public_key_sha256(c.local_certificate_der));
    auto rd = connection_report_data(c.tls_exporter, spki, purpose);
    MOSS_ASSIGN_OR_RETURN(Evidence evidence, producer->produce(rd));
    auto response = c.send(net::Request::make(
        "POST", path, std::string(evidence.bytes.begin(), evidence.bytes.end()), "application/octet-stream"));
    if (!response.ok()) return std::move(response).status().with_context("connection attestation");
    Status accepted = net::status_from_response(*response);
    if (!accepted.ok()) return Status(accepted.code(), "connection attestation refused: " + accepted.message());
    return Status::Ok();
  };
}

Result<ConnectionEvidenceVerifier> ConnectionEvidenceVerifier::create(AttestedPeerConfig config) {
  MOSS_ASSIGN_OR_RETURN(auto verifier, EvidenceVerifier::create());
  if (config.cache) config.verify.cache = config.cache.get();
  return ConnectionEvidenceVerifier(std::make_shared<const AttestedPeerConfig>(std::move(config)),
                                    std::make_shared<const EvidenceVerifier>(std::move(verifier)));
}

Result<std::shared_ptr<const ConnectionAttestation>> ConnectionEvidenceVerifier::verify(
    std::span<const uint8_t> evidence, const net::ConnectionContext& connection,
    const AttestedPeerIdentity& peer) const {
  if (connection.tls_exporter().size() != net::kConnectionExporterBytes)
    return refuse(ErrorCode::kUnauthenticated, "connection-evidence-invalid", "the connection is not TLS");
  if (evidence.empty() || evidence.size() > kMaxCertEvidenceBytes)
    return refuse(ErrorCode::kUnauthenticated, "connection-evidence-invalid",
                  fmt::format("evidence of {} bytes (1..{})", evidence.size(), kMaxCertEvidenceBytes));
  auto expected = connection_report_data(connection.tls_exporter(), peer.spki_sha256, config_->purpose);
  auto claims = verifier_->verify_and_check(evidence, config_->verify, expected, &config_->policy);
  // "report-data" here means evidence made for another connection, key or purpose (a replay).
  if (!claims.ok()) {
    return refuse(ErrorCode::kUnauthenticated, "connection-evidence-invalid", claims.status().message());
  }
  if (claims->tee != peer.claims.tee || claims->measurement != peer.claims.measurement) {
    return refuse(ErrorCode::kUnauthenticated, "connection-evidence-mismatch",
                  "the evidence names another TEE or measurement than the peer's certificate");
  }
  auto out = std::make_shared<ConnectionAttestation>();
  out->claims = std::move(claims).value();
  out->spki_sha256 = peer.spki_sha256;
  return std::shared_ptr<const ConnectionAttestation>(std::move(out));
}

Result<std::shared_ptr<const ConnectionAttestation>> ConnectionEvidenceVerifier::accept(
    const net::Request& request) const {
  auto peer = std::dynamic_pointer_cast<const AttestedPeerIdentity>(request.peer);
  if (!peer || !request.connection)
    return refuse(ErrorCode::kUnauthenticated, "connection-evidence-invalid",
                  "the peer presented no attested certificate");
  const auto* bytes = reinterpret_cast<const uint8_t*>(request.body.data());
  MOSS_ASSIGN_OR_RETURN(auto verified, verify({bytes, request.body.size()}, *request.connection, *peer));
  request.connection->attach(verified);
  return verified;
}

std::shared_ptr<const ConnectionAttestation> connection_attestation(
    const std::shared_ptr<net::ConnectionContext>& connection) {
  if (!connection) return nullptr;
  return std::dynamic_pointer_cast<const ConnectionAttestation>(connection->attachment());
}

}  // namespace moss::attest
