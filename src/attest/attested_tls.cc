#include "attest/attested_tls.h"
#include "common/sha256.h"

#include "common/logging.h"

namespace moss::attest {
namespace {

constexpr std::string_view kPurposeDomain = "moss-attested-tls-v1";

}  // namespace

std::array<uint8_t, 64> attested_tls_report_data(const std::array<uint8_t, 32>& spki_sha256,
                                                 std::string_view purpose) {
  std::vector<uint8_t> label(kPurposeDomain.begin(), kPurposeDomain.end());
  label.push_back(0);
  label.insert(label.end(), purpose.begin(), purpose.end());
  auto purpose_hash = sha256(label);
  std::array<uint8_t, 64> rd{};
  std::copy(spki_sha256.begin(), spki_sha256.end(), rd.begin());
  std::copy(purpose_hash.begin(), purpose_hash.end(), rd.begin() + 32);
  return rd;
}

Result<std::chrono::seconds> attested_certificate_lifetime(std::chrono::milliseconds configured,
                                                          std::string_view setting) {
  if (configured < std::chrono::minutes(1))
    return invalid_argument("{} must be at least 1m", setting);
  return std::chrono::duration_cast<std::chrono::seconds>(configured);
}

Result<net::TlsCredentials> make_attested_credentials(EvidenceProducer& producer,
                                                      const AttestedCredentialOptions& options) {
  MOSS_ASSIGN_OR_RETURN(SecretBytes key, net::generate_private_key_pem(net::KeyType::kEcdsaP256));
  MOSS_ASSIGN_OR_RETURN(auto spki_hash, net::public_key_sha256(key));
  auto rd = attested_tls_report_data(spki_hash, options.purpose);
  MOSS_ASSIGN_OR_RETURN(Evidence evidence, producer.produce(rd));
  if (evidence.bytes.size() > kMaxCertEvidenceBytes)
    return resource_exhausted("evidence of {} bytes does not fit a certificate", evidence.bytes.size());
  net::CertificateOptions cert = options.certificate;
  cert.extensions.push_back({kAttestedTlsEvidenceOid, std::move(evidence.bytes), false});
  MOSS_ASSIGN_OR_RETURN(std::string pem, net::self_signed_certificate_pem(key, cert));
  net::TlsCredentials out;
  out.cert_pem = std::move(pem);
  out.key_pem = std::move(key);
  return out;
}

Result<net::RenewableCredentialsPtr> make_renewing_attested_credentials(
    std::shared_ptr<EvidenceProducer> producer, AttestedCredentialOptions options) {
  if (!producer) return invalid_argument("renewing attested credentials need an evidence producer");
  MOSS_ASSIGN_OR_RETURN(auto first, make_attested_credentials(*producer, options));
  MOSS_ASSIGN_OR_RETURN(auto renewable, net::RenewableCredentials::create(std::move(first)));
  const auto every = std::chrono::duration_cast<std::chrono::milliseconds>(options.certificate.lifetime) / 2;
  MOSS_RETURN_IF_ERROR(renewable->start_renewing(
      [producer, options] { return make_attested_credentials(*producer, options); }, every));
  return renewable;
}

Result<std::shared_ptr<const AttestedPeerIdentity>> verify_attested_certificate(
    std::span<const uint8_t> cert_der, const EvidenceVerifier& verifier,
    const AttestedPeerConfig& config) {
  // The certificate's lifetime is the evidence's freshness (see the header): an expired or
  // not-yet-valid certificate is refused whatever its evidence says.
  const std::time_t at = config.verify.at.value_or(std::time(nullptr));
  if (Status valid = net::check_certificate_validity(cert_der, at); !valid.ok())
    return unauthenticated("attested-tls: {}", valid.message());
  MOSS_ASSIGN_OR_RETURN(auto ext, net::certificate_extension(cert_der, kAttestedTlsEvidenceOid));
  if (!ext) return unauthenticated("attested-tls: peer certificate carries no evidence");
  if (ext->value.size() > kMaxCertEvidenceBytes)
    return unauthenticated("attested-tls: evidence of {} bytes is too large", ext->value.size());
  MOSS_ASSIGN_OR_RETURN(auto spki_hash, net::certificate_public_key_sha256(cert_der));
  auto expected = attested_tls_report_data(spki_hash, config.purpose);
  auto claims = verifier.verify_and_check(ext->value, config.verify, expected, &config.policy);
  if (!claims.ok()) {
    // Report data first names the likely cause: evidence made for another key or purpose.
    return Status(claims.status().code(), "attested-tls: " + claims.status().message());
  }
  auto id = std::make_shared<AttestedPeerIdentity>();
  id->claims = std::move(claims).value();
  id->spki_sha256 = spki_hash;
  id->name = fmt::format("{}:{}", tee_type_name(id->claims.tee), id->claims.measurement.substr(0, 16));
  log::get("attest")->info("attested-peer tee={} measurement={} tcb={}", tee_type_name(id->claims.tee),
                           id->claims.measurement, id->claims.tcb_status);
  return std::shared_ptr<const AttestedPeerIdentity>(std::move(id));
}

Result<net::PeerVerifier> make_attested_peer_verifier(AttestedPeerConfig config) {
  MOSS_ASSIGN_OR_RETURN(auto verifier, EvidenceVerifier::create());
  if (config.cache) config.verify.cache = config.cache.get();
  auto shared = std::make_shared<const AttestedPeerConfig>(std::move(config));
  auto v = std::make_shared<const EvidenceVerifier>(std::move(verifier));
  return net::PeerVerifier(
      [shared, v](const net::PeerCertificate& peer) -> Result<std::shared_ptr<const net::PeerIdentity>> {
        MOSS_ASSIGN_OR_RETURN(auto id, verify_attested_certificate(peer.leaf_der, *v, *shared));
        return std::shared_ptr<const net::PeerIdentity>(std::move(id));
      });
}

net::TlsServerConfig attested_server_config(net::TlsCredentials credentials,
                                            net::PeerVerifier client_verifier) {
  net::TlsServerConfig c;
  c.cert_chain_pem = std::move(credentials.cert_pem);
  c.key_pem = std::move(credentials.key_pem);
  c.require_client_cert = static_cast<bool>(client_verifier);
  c.verify_peer = std::move(client_verifier);
  return c;
}

net::TlsServerConfig attested_server_config(net::RenewableCredentialsPtr credentials,
                                            net::PeerVerifier client_verifier) {
  net::TlsServerConfig c = attested_server_config(net::TlsCredentials{}, std::move(client_verifier));
  c.renewable = std::move(credentials);
  return c;
}

net::TlsClientConfig attested_client_config(net::PeerVerifier server_verifier,
                                            net::RenewableCredentialsPtr credentials) {
  net::TlsClientConfig c = attested_client_config(std::move(server_verifier));
  c.renewable = std::move(credentials);
  return c;
}

net::TlsClientConfig attested_client_config(net::PeerVerifier server_verifier,
                                            std::optional<net::TlsCredentials> credentials) {
  net::TlsClientConfig c;
  c.verify_hostname = false;  // the evidence, not a CA-issued name, identifies the server
  c.verify_peer = std::move(server_verifier);
  if (credentials) {
    c.cert_chain_pem = std::move(credentials->cert_pem);
    c.key_pem = std::move(credentials->key_pem);
  }
  return c;
}

}  // namespace moss::attest
