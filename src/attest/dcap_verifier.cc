#include "attest/dcap_verifier.h"
#include "attest/ecdsa_p256.h"
#include "attest/x509.h"
#include "common/encoding.h"
#include "common/ossl.h"
#include "common/rfc3339.h"
#include "common/sha256.h"

#include "attest/intel_root.h"
#include "attest/pck_cert.h"
#include "attest/tcb_evaluation.h"

#include <algorithm>
#include <cstring>

namespace moss::attest {
namespace {

Status check_quote_signature(const Quote& q) {
  auto key = p256_key_from_raw(q.attestation_key);
  if (!key.ok()) return unauthenticated("quote-signature: {}", key.status().message());
  if (!verify_ecdsa_raw(key->get(), q.signed_region, q.quote_signature).ok())
    return unauthenticated("quote-signature: header and body are not signed by the attestation key");
  return Status::Ok();
}

Status check_qe_report_data(const Quote& q) {
  std::vector<uint8_t> hashed(q.attestation_key.begin(), q.attestation_key.end());
  hashed.insert(hashed.end(), q.qe_auth_data.begin(), q.qe_auth_data.end());
  auto hash = sha256(hashed);
  const auto& rd = q.qe_report.report_data;
  bool zero_tail = std::all_of(rd.begin() + 32, rd.end(), [](uint8_t b) { return b == 0; });
  if (std::memcmp(hash.data(), rd.data(), 32) != 0 || !zero_tail)
    return unauthenticated("qe-report-data: QE report does not bind the attestation key");
  return Status::Ok();
}

void fill_body_claims(const Quote& q, Claims& c) {
  c.quote_version = q.header.version;
  if (q.is_tdx) {
    const TdReportBody& td = q.td_body;
    c.tee = TeeType::kTdx;
    c.measurement = hex_encode(td.mr_td);
    c.mr_seam = hex_encode(td.mr_seam);
    for (size_t i = 0; i < 4; ++i) c.rtmr[i] = hex_encode(td.rtmr[i]);
    c.debug = td.debug();
  } else {
    const SgxReportBody& b = q.sgx_body;
    c.tee = TeeType::kSgx;
    c.measurement = hex_encode(b.mr_enclave);
    c.mr_signer = hex_encode(b.mr_signer);
    c.product_id = b.isv_prod_id;
    c.svn = b.isv_svn;
    c.debug = b.debug();
  }
  std::copy(q.report_data().begin(), q.report_data().end(), c.report_data.begin());
}

// Narrows the claims' collateral window to [from, until] and fails when `at` is outside it.
Status within(Claims& c, const char* what, std::time_t from, std::time_t until, std::time_t at) {
  c.collateral_not_before = c.collateral_not_before ? std::max(*c.collateral_not_before, from) : from;
  c.collateral_not_after = c.collateral_not_after ? std::min(*c.collateral_not_after, until) : until;
  if (at < from || at >= until)
    return unauthenticated("collateral-validity: {} is valid {} to {}, not at {}", what,
                           format_rfc3339(from), format_rfc3339(until),
                           format_rfc3339(at));
  return Status::Ok();
}

Status crl_window(Claims& c, X509_CRL* crl, const char* what, std::time_t at) {
  auto from = ossl::asn1_time_to_unix(X509_CRL_get0_lastUpdate(crl));
  auto until = ossl::asn1_time_to_unix(X509_CRL_get0_nextUpdate(crl));
  if (!from.ok() || !until.ok()) return invalid_argument("{}: bad update times", what);
  // The chain check already failed an expired CRL; this records the window in the claims.
  return within(c, what, *from, *until, at);
}

Status evaluate_collateral(const Quote& q, const PckExtensions& pck, const Collateral& col,
                           X509* root, std::time_t at, Claims& c) {
  std::vector<X509_CRL*> root_crls;
  if (col.root_crl) {
    root_crls.push_back(col.root_crl.get());
    MOSS_RETURN_IF_ERROR(crl_window(c, col.root_crl.get(), "root CA CRL", at));
    MOSS_RETURN_IF_ERROR(crl_window(c, col.pck_crl.get(), "PCK CRL", at));
  }
  if (col.tcb_info || col.qe_identity) {
    std::vector<X509*> untrusted;
    for (size_t i = 1; i < col.tcb_signing_chain.size(); ++i) untrusted.push_back(col.tcb_signing_chain[i].get());
    Status st = x509::verify_chain(col.tcb_signing_chain[0].get(), untrusted, root, root_crls, at);
    if (!st.ok()) return unauthenticated("tcb-signing-chain: {}", st.message());
  }
  std::string platform = std::string(kTcbUnknown);
  if (col.tcb_info) {
    const TcbInfo& info = *col.tcb_info;
    MOSS_RETURN_IF_ERROR(within(c, "TCB info", info.issue_date, info.next_update, at));
    c.tcb_info_issue_date = info.issue_date;
    MOSS_ASSIGN_OR_RETURN(TcbVerdict v, evaluate_platform_tcb(info, pck, q));
    platform = c.platform_tcb_status = v.status;
    c.advisory_ids = v.advisory_ids;
    c.tcb_status = v.status;
    if (q.is_tdx) {
      MOSS_ASSIGN_OR_RETURN(auto module, evaluate_tdx_module(info, q.td_body));
      if (module) {
        c.tdx_module_tcb_status = module->status;
        c.tcb_status = converge_tcb_status(c.tcb_status, module->status);
        c.advisory_ids.insert(c.advisory_ids.end(), module->advisory_ids.begin(),
                              module->advisory_ids.end());
      }
    }
    c.tcb_info_checked = true;
  }
  if (col.qe_identity) {
    const QeIdentity& qe = *col.qe_identity;
    MOSS_RETURN_IF_ERROR(within(c, "QE identity", qe.issue_date, qe.next_update, at));
    MOSS_ASSIGN_OR_RETURN(TcbVerdict v, evaluate_qe_identity(qe, q.qe_report, q.is_tdx));
    c.qe_tcb_status = v.status;
    if (col.tcb_info) c.tcb_status = converge_tcb_status(c.tcb_status, v.status);
    c.advisory_ids.insert(c.advisory_ids.end(), v.advisory_ids.begin(), v.advisory_ids.end());
    c.qe_identity_checked = true;
  }
  std::sort(c.advisory_ids.begin(), c.advisory_ids.end());
  c.advisory_ids.erase(std::unique(c.advisory_ids.begin(), c.advisory_ids.end()),
                       c.advisory_ids.end());
  return Status::Ok();
}

}  // namespace

Result<DcapVerifier> DcapVerifier::create() {
  MOSS_ASSIGN_OR_RETURN(auto root, intel_sgx_root_ca());
  return DcapVerifier(std::shared_ptr<X509>(root.release(), X509_free));
}

DcapVerifier DcapVerifier::with_root(ossl::X509Ptr root) {
  return DcapVerifier(std::shared_ptr<X509>(root.release(), X509_free));
}

Result<Claims> DcapVerifier::verify(std::span<const uint8_t> quote_bytes,
                                    const DcapVerifyOptions& options) const {
  MOSS_ASSIGN_OR_RETURN(Quote q, parse_quote(quote_bytes));
  return verify(q, options);
}

Result<Claims> DcapVerifier::verify(const Quote& q, const DcapVerifyOptions& options) const {
  std::time_t at = options.at;
  MOSS_RETURN_IF_ERROR(check_quote_signature(q));
  MOSS_RETURN_IF_ERROR(check_qe_report_data(q));
  auto chain = ossl::parse_pem_chain(q.pck_chain_pem);
  if (!chain.ok()) return invalid_argument("pck-chain: {}", chain.status().message());
  std::vector<ossl::X509Ptr> certs = std::move(chain).value();
  X509* leaf = certs[0].get();
  std::vector<X509*> untrusted;
  for (size_t i = 1; i < certs.size(); ++i) untrusted.push_back(certs[i].get());

  Claims c;
  c.verified_at = at;
  fill_body_claims(q, c);
  MOSS_ASSIGN_OR_RETURN(PckExtensions pck, parse_pck_extensions(leaf));
  c.fmspc = hex_encode(pck.fmspc);
  CollateralPtr col = options.collateral;
  if (!col && options.cache) col = options.cache->find(q.is_tdx ? "TDX" : "SGX", c.fmspc, at);

  std::vector<X509_CRL*> crls;
  if (col && col->root_crl) {
    crls.push_back(col->root_crl.get());
    crls.push_back(col->pck_crl.get());
    c.crls_checked = true;
  }
  Status st = x509::verify_chain(leaf, untrusted, root_.get(), crls, at);
  if (!st.ok()) return unauthenticated("pck-chain: {}", st.message());
  auto leaf_from = ossl::asn1_time_to_unix(X509_get0_notBefore(leaf));
  auto leaf_until = ossl::asn1_time_to_unix(X509_get0_notAfter(leaf));
  if (!verify_ecdsa_raw(X509_get0_pubkey(leaf), q.qe_report_raw, q.qe_report_signature).ok())
    return unauthenticated("qe-report-signature: QE report is not signed by the PCK certificate");
  if (!col) return c;
  if (leaf_from.ok() && leaf_until.ok())
    MOSS_RETURN_IF_ERROR(within(c, "PCK certificate", *leaf_from, *leaf_until, at));
  MOSS_RETURN_IF_ERROR(evaluate_collateral(q, pck, *col, root_.get(), at, c));
  return c;
}

}  // namespace moss::attest
