// DCAP collateral: TCB info, QE identity, their signing chain, and the root and PCK CRLs.
//
// Loading checks what does not depend on time: the JSON signatures by the TCB-signing key (over
// the exact bytes of the "tcbInfo" / "enclaveIdentity" value) and the TCB-signing chain's
// signatures up to the pinned root. What depends on the verification time (validity windows, CRL
// freshness) is checked by the DCAP verifier for each quote. Any piece may be absent; the claims
// record which were checked and a policy can require all of them. Immutable after loading.
#pragma once

#include "common/ossl.h"
#include "common/status.h"

#include <array>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace moss::attest {

struct TcbLevel {
  std::array<uint8_t, 16> sgx_components{};
  std::array<uint8_t, 16> tdx_components{};
  bool has_tdx_components = false;
  uint16_t pce_svn = 0;
  std::string status;
  std::vector<std::string> advisory_ids;
};

// One level of a QE identity or TDX module identity: ISVSVN threshold and status.
struct IsvTcbLevel {
  uint16_t isv_svn = 0;
  std::string status;
  std::vector<std::string> advisory_ids;
};

struct TdxModuleIdentity {
  std::string id;                  // "TDX_01": TEE_TCB_SVN[1] as two hex digits
  std::vector<uint8_t> mr_signer;  // 48 bytes
  std::array<uint8_t, 8> attributes{};
  std::array<uint8_t, 8> attributes_mask{};
  std::vector<IsvTcbLevel> levels;
};

struct TcbInfo {
  std::string id;  // "SGX" or "TDX"
  int version = 0;
  std::time_t issue_date = 0;
  std::time_t next_update = 0;
  std::array<uint8_t, 6> fmspc{};
  std::array<uint8_t, 2> pce_id{};
  std::vector<TcbLevel> levels;  // in Intel's order: best first
  std::optional<TdxModuleIdentity> tdx_module;      // v3 "tdxModule" (version 0 modules)
  std::vector<TdxModuleIdentity> tdx_module_identities;
};

struct QeIdentity {
  std::string id;  // "QE" or "TD_QE"
  std::time_t issue_date = 0;
  std::time_t next_update = 0;
  uint32_t misc_select = 0;
  uint32_t misc_select_mask = 0;
  std::array<uint8_t, 16> attributes{};
  std::array<uint8_t, 16> attributes_mask{};
  std::array<uint8_t, 32> mr_signer{};
  uint16_t isv_prod_id = 0;
  std::vector<IsvTcbLevel> levels;
};

struct Collateral {
  std::optional<TcbInfo> tcb_info;
  std::optional<QeIdentity> qe_identity;
  std::vector<ossl::X509Ptr> tcb_signing_chain;  // TCB-signing certificate first
  ossl::X509CrlPtr root_crl;
  ossl::X509CrlPtr pck_crl;
};
using CollateralPtr = std::shared_ptr<const Collateral>;

// Parses one JSON document in Intel PCS form and checks its signature with `signer`.
Result<TcbInfo> parse_tcb_info(std::string_view json_text, EVP_PKEY* signer);
Result<QeIdentity> parse_qe_identity(std::string_view json_text, EVP_PKEY* signer);

// Loads a directory laid out like tests/data/attestation/<quote>.collateral/:
// tcb_info.json, qe_identity.json, tcb_signing_chain.pem, pck_crl.der, root_ca_crl.der (each
// optional; the JSON files need the signing chain). `root` is the pinned trust anchor.
Result<CollateralPtr> load_collateral_dir(const std::filesystem::path& dir, X509* root);

// Verified collateral keyed by TEE type and FMSPC ("SGX/00a067110000"), served while the time
// asked about is before the earliest nextUpdate in it. Thread-safe.
class CollateralCache {
 public:
  void put(CollateralPtr collateral);
  // The collateral for (type, fmspc hex) still valid at `at`, or nullptr.
  CollateralPtr find(std::string_view tee, std::string_view fmspc_hex, std::time_t at) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, CollateralPtr> entries_;  // guarded by mutex_
};

// The earliest nextUpdate of the collateral's parts (TCB info, QE identity, CRLs).
std::optional<std::time_t> collateral_next_update(const Collateral& c);

}  // namespace moss::attest
