#include "attest/tcb_evaluation.h"
#include "common/encoding.h"

#include <algorithm>

namespace moss::attest {
namespace {

// Intel compares TDX TCB components from index 2 when a TDX module version is in use: bytes 0
// and 1 of TEE_TCB_SVN are the module's SVN and version, judged by the module identities.
bool tdx_components_ok(const TcbLevel& level, const std::array<uint8_t, 16>& tee_tcb_svn) {
  size_t first = tee_tcb_svn[1] > 0 ? 2 : 0;
  for (size_t i = first; i < 16; ++i)
    if (tee_tcb_svn[i] < level.tdx_components[i]) return false;
  return true;
}

bool sgx_components_ok(const TcbLevel& level, const PckExtensions& pck) {
  for (size_t i = 0; i < 16; ++i)
    if (pck.tcb_comp_svns[i] < level.sgx_components[i]) return false;
  return pck.pce_svn >= level.pce_svn;
}

template <size_t N>
bool masked_equal(const std::array<uint8_t, N>& a, const std::array<uint8_t, N>& b,
                  const std::array<uint8_t, N>& mask) {
  for (size_t i = 0; i < N; ++i)
    if ((a[i] & mask[i]) != (b[i] & mask[i])) return false;
  return true;
}

Status check_module(const TdxModuleIdentity& m, const TdReportBody& td) {
  if (!std::equal(m.mr_signer.begin(), m.mr_signer.end(), td.mr_signer_seam.begin(),
                  td.mr_signer_seam.end()))
    return unauthenticated("tdx-module: MRSIGNERSEAM {} is not the TDX module signer",
                           hex_encode(td.mr_signer_seam));
  if (!masked_equal(td.seam_attributes, m.attributes, m.attributes_mask))
    return unauthenticated("tdx-module: SEAM attributes {} do not match",
                           hex_encode(td.seam_attributes));
  return Status::Ok();
}

}  // namespace

Result<TcbVerdict> evaluate_platform_tcb(const TcbInfo& info, const PckExtensions& pck,
                                         const Quote& quote) {
  std::string want = quote.is_tdx ? "TDX" : "SGX";
  if (info.id != want)
    return invalid_argument("tcb-info: TCB info is for {}, the quote is {}", info.id, want);
  if (info.fmspc != pck.fmspc)
    return invalid_argument("tcb-info: FMSPC {} does not match the PCK certificate's {}",
                            hex_encode(info.fmspc), hex_encode(pck.fmspc));
  if (info.pce_id != pck.pce_id)
    return invalid_argument("tcb-info: PCE ID does not match the PCK certificate");
  for (const TcbLevel& level : info.levels) {
    if (!sgx_components_ok(level, pck)) continue;
    if (quote.is_tdx) {
      if (!level.has_tdx_components) continue;
      if (!tdx_components_ok(level, quote.td_body.tee_tcb_svn)) continue;
    }
    return TcbVerdict{level.status, level.advisory_ids};
  }
  return unauthenticated("tcb-level: TCB level not supported (FMSPC {}, PCESVN {})",
                         hex_encode(pck.fmspc), pck.pce_svn);
}

Result<std::optional<TcbVerdict>> evaluate_tdx_module(const TcbInfo& info, const TdReportBody& td) {
  uint8_t version = td.tee_tcb_svn[1];
  if (version == 0) {
    if (info.tdx_module) MOSS_RETURN_IF_ERROR(check_module(*info.tdx_module, td));
    return std::optional<TcbVerdict>();
  }
  std::string id = fmt::format("TDX_{:02X}", version);
  auto it = std::find_if(info.tdx_module_identities.begin(), info.tdx_module_identities.end(),
                         [&](const TdxModuleIdentity& m) { return m.id == id; });
  if (it == info.tdx_module_identities.end())
    return unauthenticated("tcb-level: TCB level not supported (no TDX module identity {})", id);
  MOSS_RETURN_IF_ERROR(check_module(*it, td));
  for (const IsvTcbLevel& level : it->levels)
    if (td.tee_tcb_svn[0] >= level.isv_svn)
      return std::optional<TcbVerdict>(TcbVerdict{level.status, level.advisory_ids});
  return unauthenticated("tcb-level: TCB level not supported (TDX module {} SVN {})", id,
                         td.tee_tcb_svn[0]);
}

Result<TcbVerdict> evaluate_qe_identity(const QeIdentity& qe, const SgxReportBody& r, bool is_tdx) {
  std::string want = is_tdx ? "TD_QE" : "QE";
  if (qe.id != want)
    return invalid_argument("qe-identity: identity is for {}, the quote needs {}", qe.id, want);
  if (qe.mr_signer != r.mr_signer)
    return unauthenticated("qe-identity: QE MRSIGNER {} does not match", hex_encode(r.mr_signer));
  if (qe.isv_prod_id != r.isv_prod_id)
    return unauthenticated("qe-identity: QE ISVPRODID {} does not match {}", r.isv_prod_id,
                           qe.isv_prod_id);
  if ((r.misc_select & qe.misc_select_mask) != (qe.misc_select & qe.misc_select_mask))
    return unauthenticated("qe-identity: QE MISCSELECT does not match");
  if (!masked_equal(r.attributes, qe.attributes, qe.attributes_mask))
    return unauthenticated("qe-identity: QE attributes do not match");
  for (const IsvTcbLevel& level : qe.levels)
    if (r.isv_svn >= level.isv_svn) return TcbVerdict{level.status, level.advisory_ids};
  return unauthenticated("qe-identity: TCB level not supported (QE ISVSVN {})", r.isv_svn);
}

std::string converge_tcb_status(const std::string& platform, const std::string& other) {
  if (other == "Revoked" || platform == "Revoked") return "Revoked";
  if (other == "OutOfDate") {
    if (platform == "UpToDate" || platform == "SWHardeningNeeded") return "OutOfDate";
    if (platform == "ConfigurationNeeded" || platform == "ConfigurationAndSWHardeningNeeded")
      return "OutOfDateConfigurationNeeded";
  }
  return platform;
}

}  // namespace moss::attest
