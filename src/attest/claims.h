// Claims: what a verifier proved about a peer, in one structure for every evidence type.
// A value type; immutable once a verifier returns it.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

namespace moss::attest {

enum class TeeType { kSgx, kTdx, kSimulated };
std::string_view tee_type_name(TeeType t);  // "sgx", "tdx", "simulated"

// Intel's TCB status names, plus "Unknown" (no TCB info given) and "Simulated".
inline constexpr std::string_view kTcbUnknown = "Unknown";
inline constexpr std::string_view kTcbSimulated = "Simulated";

struct Claims {
  TeeType tee = TeeType::kSimulated;
  int quote_version = 0;  // 3, 4 or 5 for DCAP quotes; 1 for simulated evidence

  // The primary measurement a policy or access rule names: MRENCLAVE (SGX), MRTD (TDX), or the
  // simulated measurement. Lowercase hex.
  std::string measurement;
  std::string mr_signer;               // SGX MRSIGNER; TDX MRSIGNERSEAM is not a signer of the TD
  std::string mr_seam;                 // TDX only
  std::array<std::string, 4> rtmr;     // TDX only
  std::string simulated_identity;      // simulated only: the configured identity string
  uint16_t product_id = 0;             // SGX ISVPRODID
  uint16_t svn = 0;                    // SGX ISVSVN
  bool debug = false;
  std::array<uint8_t, 64> report_data{};

  // TCB: platform level (from TCB info), QE identity, TDX module, and the combined status.
  std::string tcb_status = std::string(kTcbUnknown);
  std::vector<std::string> advisory_ids;
  std::string platform_tcb_status;     // empty when not evaluated
  std::string qe_tcb_status;           // empty when QE identity was not given
  std::string tdx_module_tcb_status;   // empty when not applicable
  std::string fmspc;

  // What collateral was checked, and the window in which all of it was valid.
  bool tcb_info_checked = false;
  bool qe_identity_checked = false;
  bool crls_checked = false;
  std::optional<std::time_t> collateral_not_before;
  std::optional<std::time_t> collateral_not_after;
  std::optional<std::time_t> tcb_info_issue_date;
  std::time_t verified_at = 0;

  bool simulated() const { return tee == TeeType::kSimulated; }
};

nlohmann::json claims_to_json(const Claims& claims);

}  // namespace moss::attest
