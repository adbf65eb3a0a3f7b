// The pinned Intel SGX Root CA: the only trust anchor for PCK chains, TCB-signing chains and CRLs.
// A quote carries a root certificate too; it is never trusted.
#pragma once

#include "common/ossl.h"

namespace moss::attest {

// SHA-256 of the DER certificate, as published by Intel.
inline constexpr char kIntelSgxRootFingerprint[] =
    "44a0196b2b99f889b8e149e95b807a35"
    "0e7424964399e885a7cbb8ccfab674d3";

// The embedded certificate, checked against the pinned fingerprint on every call.
Result<ossl::X509Ptr> intel_sgx_root_ca();

}  // namespace moss::attest
