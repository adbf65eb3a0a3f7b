// One entry point for every evidence type: detects simulated evidence or a DCAP quote, verifies
// it, and optionally checks the report data and a policy. This is what services call.
// Immutable after construction; thread-safe.
#pragma once

#include "attest/dcap_verifier.h"
#include "attest/policy.h"
#include "attest/simulated.h"

#include <optional>

namespace moss::attest {

struct EvidenceVerifyOptions {
  std::optional<std::time_t> at;            // default: now
  CollateralPtr collateral;                 // DCAP: explicit collateral, else from the cache
  const CollateralCache* cache = nullptr;
  std::optional<SimPublicKey> sim_platform_key;  // needed to verify simulated evidence
  bool allow_simulated = false;             // refused unless true (a policy can also refuse)
};

class EvidenceVerifier {
 public:
  static Result<EvidenceVerifier> create();
  explicit EvidenceVerifier(DcapVerifier dcap) : dcap_(std::move(dcap)) {}

  Result<Claims> verify(std::span<const uint8_t> evidence, const EvidenceVerifyOptions& options) const;

  // verify(), then "report-data" equality with `expected` (when given), then `policy` (when given).
  Result<Claims> verify_and_check(std::span<const uint8_t> evidence, const EvidenceVerifyOptions& options,
                                  std::optional<std::span<const uint8_t, 64>> expected_report_data,
                                  const Policy* policy) const;

 private:
  DcapVerifier dcap_;
};

// Fails with "report-data: ..." unless the claims carry exactly `expected`.
Status check_report_data(const Claims& claims, std::span<const uint8_t, 64> expected);

}  // namespace moss::attest
