// Intel DCAP ECDSA quote verification with OpenSSL alone (SGX v3, TDX v4 and v5).
//
// Checks, in order, each failure naming its check: quote-signature (attestation key over header
// and body), qe-report-data (SHA-256(attestation key || QE auth data) in the QE report),
// pck-chain (to the pinned Intel SGX Root CA, with the CRLs when collateral has them, at the
// verification time), qe-report-signature (by the PCK key), then with collateral:
// tcb-signing-chain, collateral-validity, tcb-level, qe-identity, tdx-module.
// Immutable after construction; thread-safe.
#pragma once

#include "attest/claims.h"
#include "common/ossl.h"
#include "attest/collateral.h"
#include "attest/quote.h"

#include <ctime>

namespace moss::attest {

struct DcapVerifyOptions {
  std::time_t at = 0;                         // verification time (Unix seconds)
  CollateralPtr collateral;                   // used when set
  const CollateralCache* cache = nullptr;     // else looked up here by TEE type and FMSPC
};

class DcapVerifier {
 public:
  // Trusts the embedded Intel SGX Root CA (pinned by fingerprint).
  static Result<DcapVerifier> create();
  // Trusts `root` instead; for tests of the "wrong root" case only.
  static DcapVerifier with_root(ossl::X509Ptr root);

  Result<Claims> verify(std::span<const uint8_t> quote_bytes, const DcapVerifyOptions& options) const;
  Result<Claims> verify(const Quote& quote, const DcapVerifyOptions& options) const;

  X509* root() const { return root_.get(); }

 private:
  explicit DcapVerifier(std::shared_ptr<X509> root) : root_(std::move(root)) {}
  std::shared_ptr<X509> root_;
};

}  // namespace moss::attest
