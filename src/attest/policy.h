// Attestation policy: which verified claims a service accepts. Loaded from a readable, versioned
// JSON file (format in docs/attestation.md); unknown keys are errors so a typo cannot loosen it.
//
// Rules, checked in this order; a rejection names the rule:
//   simulated        simulated evidence only with "allow_simulated": true
//   measurement      claims must match one "measurements" entry (none listed: nothing matches)
//   debug            debug enclaves/TDs only with "allow_debug": true
//   collateral       TCB info, QE identity and CRLs must all have been checked (default)
//   collateral-age   TCB info issued at most max_collateral_age_hours before the check
//   tcb-status       the TCB status must be listed in tcb.accept (default: UpToDate only),
//                    optionally only with listed advisory ids
// Immutable after loading; thread-safe.
#pragma once

#include "attest/claims.h"
#include "common/status.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace moss::attest {

inline constexpr int kPolicyVersion = 1;

struct MeasurementRule {
  TeeType tee = TeeType::kSgx;
  std::string mrenclave;                 // sgx: exact enclave, or
  std::string mrsigner;                  // sgx: signer + product id + minimum SVN
  uint16_t product_id = 0;
  uint16_t min_svn = 0;
  std::string mrtd;                      // tdx
  std::array<std::string, 4> rtmr;       // tdx: empty = any
  std::string measurement;               // simulated
};

struct TcbStatusRule {
  std::string status;
  std::vector<std::string> advisory_ids;  // empty: any advisories
};

struct Policy {
  int version = kPolicyVersion;
  std::string name;
  bool allow_simulated = false;
  bool allow_debug = false;
  std::vector<MeasurementRule> measurements;
  std::vector<TcbStatusRule> accept_tcb = {{"UpToDate", {}}};
  bool require_collateral = true;
  std::optional<int64_t> max_collateral_age_seconds;

  static Result<Policy> parse(std::string_view json_text);
  static Result<Policy> load(const std::filesystem::path& path);

  // Ok, or permission-denied naming the failed rule, e.g.
  // "tcb-status: OutOfDate (INTEL-SA-00615) not accepted".
  Status check(const Claims& claims) const;
};

}  // namespace moss::attest
