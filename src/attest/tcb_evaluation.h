// Matching a platform against collateral: the TCB level of the PCK certificate (and, for TDX, of
// TEE_TCB_SVN and the TDX module), the QE identity, and how Intel combines their statuses.
// Pure functions over verified inputs.
#pragma once

#include "attest/collateral.h"
#include "attest/pck_cert.h"
#include "attest/quote.h"

namespace moss::attest {

struct TcbVerdict {
  std::string status;
  std::vector<std::string> advisory_ids;
};

// The first TCB level (Intel's order) the platform meets. Fails with "tcb-level: TCB level not
// supported" when none does, and when FMSPC, PCE ID or TEE type do not match the TCB info.
Result<TcbVerdict> evaluate_platform_tcb(const TcbInfo& info, const PckExtensions& pck,
                                         const Quote& quote);

// TDX only: the TDX module identity named by TEE_TCB_SVN[1] and its level for TEE_TCB_SVN[0].
// Returns nullopt for module version 0 (checked against "tdxModule" instead, no status).
Result<std::optional<TcbVerdict>> evaluate_tdx_module(const TcbInfo& info, const TdReportBody& td);

// The QE report against the QE identity: MRSIGNER, ISVPRODID, masked MISCSELECT and attributes,
// then the level for its ISVSVN.
Result<TcbVerdict> evaluate_qe_identity(const QeIdentity& identity, const SgxReportBody& qe_report,
                                        bool is_tdx);

// Intel's convergence: an OutOfDate QE or module turns UpToDate/SWHardeningNeeded into OutOfDate
// and the Configuration* statuses into OutOfDateConfigurationNeeded; Revoked wins.
std::string converge_tcb_status(const std::string& platform, const std::string& other);

}  // namespace moss::attest
