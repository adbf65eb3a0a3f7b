#include "attest/claims.h"

#include "common/encoding.h"
#include "common/rfc3339.h"

namespace moss::attest {

std::string_view tee_type_name(TeeType t) {
  switch (t) {
    case TeeType::kSgx: return "sgx";
    case TeeType::kTdx: return "tdx";
    case TeeType::kSimulated: return "simulated";
  }
  return "unknown";
}

nlohmann::json claims_to_json(const Claims& c) {
  using nlohmann::json;
  json j;
  j["tee"] = tee_type_name(c.tee);
  j["simulated"] = c.simulated();
  j["quote_version"] = c.quote_version;
  j["measurement"] = c.measurement;
  j["debug"] = c.debug;
  j["report_data"] = hex_encode(c.report_data);
  if (c.tee == TeeType::kSgx) {
    j["mrenclave"] = c.measurement;
    j["mrsigner"] = c.mr_signer;
    j["product_id"] = c.product_id;
    j["svn"] = c.svn;
  } else if (c.tee == TeeType::kTdx) {
    j["mrtd"] = c.measurement;
    j["mrseam"] = c.mr_seam;
    for (size_t i = 0; i < 4; ++i) j["rtmr" + std::to_string(i)] = c.rtmr[i];
  } else {
    j["identity"] = c.simulated_identity;
    j["warning"] = "SIMULATED evidence: no hardware protection";
  }
  json tcb;
  tcb["status"] = c.tcb_status;
  tcb["advisory_ids"] = c.advisory_ids;
  if (!c.platform_tcb_status.empty()) tcb["platform"] = c.platform_tcb_status;
  if (!c.qe_tcb_status.empty()) tcb["qe"] = c.qe_tcb_status;
  if (!c.tdx_module_tcb_status.empty()) tcb["tdx_module"] = c.tdx_module_tcb_status;
  if (!c.fmspc.empty()) tcb["fmspc"] = c.fmspc;
  j["tcb"] = tcb;
  json col;
  col["tcb_info"] = c.tcb_info_checked;
  col["qe_identity"] = c.qe_identity_checked;
  col["crls"] = c.crls_checked;
  if (c.collateral_not_before) col["valid_from"] = format_rfc3339(*c.collateral_not_before);
  if (c.collateral_not_after) col["valid_until"] = format_rfc3339(*c.collateral_not_after);
  if (c.tcb_info_issue_date) col["tcb_info_issued"] = format_rfc3339(*c.tcb_info_issue_date);
  j["collateral"] = col;
  j["verified_at"] = format_rfc3339(c.verified_at);
  return j;
}

}  // namespace moss::attest
