// Intel DCAP ECDSA quotes: SGX version 3, TDX version 4 and TDX version 5 (TD report 1.5 body).
//
// The parser only checks structure: every length field is bounds-checked against the input and
// against fixed caps, and nothing is trusted until dcap_verifier.h has checked the signatures.
// Bytes after the signature data are allowed (real quotes carry zero padding), and the PEM chain
// may end in "\n\0". Immutable after parsing.
#pragma once

#include "common/status.h"

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace moss::attest {

inline constexpr uint32_t kTeeTypeSgx = 0x00000000;
inline constexpr uint32_t kTeeTypeTdx = 0x00000081;
inline constexpr size_t kQuoteHeaderSize = 48;
inline constexpr size_t kSgxReportBodySize = 384;
inline constexpr size_t kTdReportBodySize = 584;     // TD report 1.0 (v4, v5 type 2)
inline constexpr size_t kTdReport15BodySize = 648;   // TD report 1.5 (v5 type 3)
inline constexpr size_t kMaxQuoteSize = 64 * 1024;   // real quotes are ~5 KiB

// The 384-byte SGX report body (application enclave report in v3, QE report everywhere).
struct SgxReportBody {
  std::array<uint8_t, 16> cpu_svn{};
  uint32_t misc_select = 0;
  std::array<uint8_t, 16> attributes{};
  std::array<uint8_t, 32> mr_enclave{};
  std::array<uint8_t, 32> mr_signer{};
  uint16_t isv_prod_id = 0;
  uint16_t isv_svn = 0;
  std::array<uint8_t, 64> report_data{};
  bool debug() const { return (attributes[0] & 0x02) != 0; }
};

// The TD report body (584 bytes; the 1.5 form adds TEE_TCB_SVN2 and MRSERVICETD).
struct TdReportBody {
  std::array<uint8_t, 16> tee_tcb_svn{};
  std::array<uint8_t, 48> mr_seam{};
  std::array<uint8_t, 48> mr_signer_seam{};
  std::array<uint8_t, 8> seam_attributes{};
  std::array<uint8_t, 8> td_attributes{};
  std::array<uint8_t, 8> xfam{};
  std::array<uint8_t, 48> mr_td{};
  std::array<uint8_t, 48> mr_config_id{};
  std::array<uint8_t, 48> mr_owner{};
  std::array<uint8_t, 48> mr_owner_config{};
  std::array<std::array<uint8_t, 48>, 4> rtmr{};
  std::array<uint8_t, 64> report_data{};
  bool is_v15 = false;
  std::array<uint8_t, 16> tee_tcb_svn2{};
  std::array<uint8_t, 48> mr_service_td{};
  bool debug() const { return (td_attributes[0] & 0x01) != 0; }
};

struct QuoteHeader {
  uint16_t version = 0;
  uint16_t att_key_type = 0;
  uint32_t tee_type = 0;
  uint16_t qe_svn = 0;
  uint16_t pce_svn = 0;
  std::array<uint8_t, 16> qe_vendor_id{};
  std::array<uint8_t, 20> user_data{};
};

struct Quote {
  QuoteHeader header;
  bool is_tdx = false;
  SgxReportBody sgx_body;  // when !is_tdx
  TdReportBody td_body;    // when is_tdx
  uint16_t body_type = 0;  // v5 only: 1 SGX, 2 TD 1.0, 3 TD 1.5

  // What the attestation key signed: header plus body (v5: plus the body type and size).
  std::vector<uint8_t> signed_region;
  uint32_t sig_data_len = 0;
  size_t trailing_bytes = 0;

  std::array<uint8_t, 64> quote_signature{};   // raw r||s
  std::array<uint8_t, 64> attestation_key{};   // raw X||Y
  std::vector<uint8_t> qe_report_raw;          // 384 bytes, what the PCK key signed
  SgxReportBody qe_report;
  std::array<uint8_t, 64> qe_report_signature{};
  std::vector<uint8_t> qe_auth_data;
  uint16_t outer_cert_data_type = 0;  // 6 in v4/v5 (QE report wrapper), 0 in v3
  uint16_t cert_data_type = 0;        // 5: PCK chain as PEM
  std::string pck_chain_pem;          // as carried, NUL terminator removed

  // The 64-byte REPORTDATA of the SGX or TD body.
  std::span<const uint8_t, 64> report_data() const {
    return is_tdx ? std::span<const uint8_t, 64>(td_body.report_data)
                  : std::span<const uint8_t, 64>(sgx_body.report_data);
  }
};

// Parses a quote. Fails with invalid-argument (malformed) or unimplemented (a version, key type
// or certification data type this verifier does not handle), naming the field.
Result<Quote> parse_quote(std::span<const uint8_t> bytes);

// Re-encodes a parsed quote (no trailing bytes). Used by tests to build altered quotes (a
// different certificate chain) and by the fuzzer to check that parse and encode agree.
std::vector<uint8_t> encode_quote(const Quote& quote);

// True when the bytes start like a DCAP quote (version 3-5, ECDSA-P256 key type).
bool looks_like_dcap_quote(std::span<const uint8_t> bytes);

}  // namespace moss::attest
