// The Intel SGX extension of a PCK certificate (OID 1.2.840.113741.1.13.1): FMSPC, PCE ID and the
// platform TCB (16 component SVNs, PCESVN, CPUSVN) that TCB info levels are matched against.
#pragma once

#include "common/status.h"

#include <openssl/x509.h>

#include <array>
#include <cstdint>
#include <span>

namespace moss::attest {

struct PckExtensions {
  std::array<uint8_t, 6> fmspc{};
  std::array<uint8_t, 2> pce_id{};
  std::array<uint8_t, 16> tcb_comp_svns{};
  uint16_t pce_svn = 0;
  std::array<uint8_t, 16> cpu_svn{};
};

// Reads the SGX extension from a (chain-verified) PCK certificate. The DER is still parsed
// defensively: bounds-checked, every required field present exactly once.
Result<PckExtensions> parse_pck_extensions(X509* pck_cert);

// The same from the extension's DER value (exposed for fuzzing).
Result<PckExtensions> parse_pck_extension_der(std::span<const uint8_t> der);

}  // namespace moss::attest
