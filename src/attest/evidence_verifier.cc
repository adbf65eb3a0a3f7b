#include "attest/evidence_verifier.h"
#include "common/encoding.h"

#include "common/secret_bytes.h"

namespace moss::attest {

Result<EvidenceVerifier> EvidenceVerifier::create() {
  MOSS_ASSIGN_OR_RETURN(auto dcap, DcapVerifier::create());
  return EvidenceVerifier(std::move(dcap));
}

Result<Claims> EvidenceVerifier::verify(std::span<const uint8_t> evidence,
                                        const EvidenceVerifyOptions& o) const {
  std::time_t at = o.at ? *o.at : std::time(nullptr);
  if (looks_like_simulated_evidence(evidence)) {
    if (!o.allow_simulated)
      return permission_denied("simulated: simulated evidence refused (not allowed by configuration)");
    if (!o.sim_platform_key)
      return failed_precondition("simulated: no simulated platform public key configured");
    return verify_simulated_evidence(evidence, *o.sim_platform_key, o.allow_simulated, at);
  }
  if (!looks_like_dcap_quote(evidence))
    return unimplemented("evidence is neither simulated evidence nor a DCAP ECDSA quote");
  DcapVerifyOptions d{at, o.collateral, o.cache};
  return dcap_.verify(evidence, d);
}

Result<Claims> EvidenceVerifier::verify_and_check(std::span<const uint8_t> evidence,
                                                  const EvidenceVerifyOptions& options,
                                                  std::optional<std::span<const uint8_t, 64>> expected,
                                                  const Policy* policy) const {
  MOSS_ASSIGN_OR_RETURN(Claims claims, verify(evidence, options));
  if (expected) MOSS_RETURN_IF_ERROR(check_report_data(claims, *expected));
  if (policy) MOSS_RETURN_IF_ERROR(policy->check(claims));
  return claims;
}

Status check_report_data(const Claims& claims, std::span<const uint8_t, 64> expected) {
  if (!constant_time_equal(claims.report_data, expected))
    return unauthenticated("report-data: evidence report data {} is not the expected {}",
                           hex_encode(claims.report_data), hex_encode(expected));
  return Status::Ok();
}

}  // namespace moss::attest
