#include "attest/quote.h"

#include <cstring>

namespace moss::attest {
namespace {

constexpr uint16_t kAttKeyEcdsaP256 = 2;
constexpr uint16_t kCertDataPckChain = 5;
constexpr uint16_t kCertDataQeReport = 6;
constexpr size_t kMaxQeAuthData = 1024;
constexpr size_t kMaxCertData = 32 * 1024;

// A cursor over untrusted bytes: every read checks the remaining length first.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }

  Result<std::span<const uint8_t>> take(size_t n, const char* what) {
    if (n > remaining())
      return invalid_argument("quote truncated: {} needs {} bytes at offset {}, {} left", what, n,
                              pos_, remaining());
    auto out = bytes_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  Result<uint16_t> u16(const char* what) {
    MOSS_ASSIGN_OR_RETURN(auto b, take(2, what));
    return static_cast<uint16_t>(b[0] | b[1] << 8);
  }
  Result<uint32_t> u32(const char* what) {
    MOSS_ASSIGN_OR_RETURN(auto b, take(4, what));
    return static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 |
           static_cast<uint32_t>(b[2]) << 16 | static_cast<uint32_t>(b[3]) << 24;
  }
  template <size_t N>
  Status copy(std::array<uint8_t, N>& out, const char* what) {
    MOSS_ASSIGN_OR_RETURN(auto b, take(N, what));
    std::memcpy(out.data(), b.data(), N);
    return Status::Ok();
  }

 private:
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
};

template <size_t N>
void copy_at(std::array<uint8_t, N>& out, std::span<const uint8_t> b, size_t off) {
  std::memcpy(out.data(), b.data() + off, N);
}
uint16_t le16(std::span<const uint8_t> b, size_t off) {
  return static_cast<uint16_t>(b[off] | b[off + 1] << 8);
}

// Precondition: b.size() == 384 (callers take exactly that many bytes).
SgxReportBody parse_sgx_body(std::span<const uint8_t> b) {
  SgxReportBody r;
  copy_at(r.cpu_svn, b, 0);
  r.misc_select = static_cast<uint32_t>(b[16]) | static_cast<uint32_t>(b[17]) << 8 |
                  static_cast<uint32_t>(b[18]) << 16 | static_cast<uint32_t>(b[19]) << 24;
  copy_at(r.attributes, b, 48);
  copy_at(r.mr_enclave, b, 64);
  copy_at(r.mr_signer, b, 128);
  r.isv_prod_id = le16(b, 256);
  r.isv_svn = le16(b, 258);
  copy_at(r.report_data, b, 320);
  return r;
}

// Precondition: b.size() is 584 or 648.
TdReportBody parse_td_body(std::span<const uint8_t> b) {
  TdReportBody r;
  copy_at(r.tee_tcb_svn, b, 0);
  copy_at(r.mr_seam, b, 16);
  copy_at(r.mr_signer_seam, b, 64);
  copy_at(r.seam_attributes, b, 112);
  copy_at(r.td_attributes, b, 120);
  copy_at(r.xfam, b, 128);
  copy_at(r.mr_td, b, 136);
  copy_at(r.mr_config_id, b, 184);
  copy_at(r.mr_owner, b, 232);
  copy_at(r.mr_owner_config, b, 280);
  for (size_t i = 0; i < 4; ++i) copy_at(r.rtmr[i], b, 328 + 48 * i);
  copy_at(r.report_data, b, 520);
  if (b.size() == kTdReport15BodySize) {
    r.is_v15 = true;
    copy_at(r.tee_tcb_svn2, b, 584);
    copy_at(r.mr_service_td, b, 600);
  }
  return r;
}

Status parse_header(Reader& r, QuoteHeader& h) {
  MOSS_ASSIGN_OR_RETURN(h.version, r.u16("header.version"));
  MOSS_ASSIGN_OR_RETURN(h.att_key_type, r.u16("header.att_key_type"));
  MOSS_ASSIGN_OR_RETURN(h.tee_type, r.u32("header.tee_type"));
  MOSS_ASSIGN_OR_RETURN(h.qe_svn, r.u16("header.qe_svn"));
  MOSS_ASSIGN_OR_RETURN(h.pce_svn, r.u16("header.pce_svn"));
  MOSS_RETURN_IF_ERROR(r.copy(h.qe_vendor_id, "header.qe_vendor_id"));
  MOSS_RETURN_IF_ERROR(r.copy(h.user_data, "header.user_data"));
  if (h.version < 3 || h.version > 5)
    return unimplemented("quote version {} not supported (3, 4 and 5 are)", h.version);
  if (h.att_key_type != kAttKeyEcdsaP256)
    return unimplemented("attestation key type {} not supported (2 = ECDSA P-256 is)",
                         h.att_key_type);
  if (h.tee_type != kTeeTypeSgx && h.tee_type != kTeeTypeTdx)
    return unimplemented("TEE type 0x{:x} not supported", h.tee_type);
  if (h.version == 3 && h.tee_type != kTeeTypeSgx)
    return invalid_argument("quote version 3 must be SGX, TEE type is 0x{:x}", h.tee_type);
  if (h.version == 4 && h.tee_type != kTeeTypeTdx)
    return unimplemented("SGX quotes in version 4 are not supported");
  return Status::Ok();
}

// Reads the report body; the v5 form is prefixed by a body type and size.
Status parse_body(Reader& r, Quote& q) {
  size_t body_size = q.header.tee_type == kTeeTypeTdx ? kTdReportBodySize : kSgxReportBodySize;
  if (q.header.version == 5) {
    MOSS_ASSIGN_OR_RETURN(q.body_type, r.u16("body.type"));
    MOSS_ASSIGN_OR_RETURN(uint32_t size, r.u32("body.size"));
    size_t want = q.body_type == 1 ? kSgxReportBodySize
                : q.body_type == 2 ? kTdReportBodySize
                : q.body_type == 3 ? kTdReport15BodySize : 0;
    if (want == 0) return unimplemented("v5 body type {} not supported", q.body_type);
    if (size != want)
      return invalid_argument("v5 body type {} must be {} bytes, size field says {}", q.body_type,
                              want, size);
    if ((q.body_type == 1) != (q.header.tee_type == kTeeTypeSgx))
      return invalid_argument("v5 body type {} does not match TEE type", q.body_type);
    body_size = want;
  }
  MOSS_ASSIGN_OR_RETURN(auto body, r.take(body_size, "report body"));
  q.is_tdx = q.header.tee_type == kTeeTypeTdx;
  if (q.is_tdx) q.td_body = parse_td_body(body);
  else q.sgx_body = parse_sgx_body(body);
  return Status::Ok();
}

// QE report, its signature, QE auth data, then the PCK chain certification data.
Status parse_qe_report_cert_data(Reader& r, Quote& q) {
  MOSS_ASSIGN_OR_RETURN(auto qe, r.take(kSgxReportBodySize, "QE report"));
  q.qe_report_raw.assign(qe.begin(), qe.end());
  q.qe_report = parse_sgx_body(qe);
  MOSS_RETURN_IF_ERROR(r.copy(q.qe_report_signature, "QE report signature"));
  MOSS_ASSIGN_OR_RETURN(uint16_t auth_len, r.u16("QE auth data size"));
  if (auth_len > kMaxQeAuthData)
    return invalid_argument("QE auth data size {} exceeds {}", auth_len, kMaxQeAuthData);
  MOSS_ASSIGN_OR_RETURN(auto auth, r.take(auth_len, "QE auth data"));
  q.qe_auth_data.assign(auth.begin(), auth.end());
  MOSS_ASSIGN_OR_RETURN(q.cert_data_type, r.u16("certification data type"));
  MOSS_ASSIGN_OR_RETURN(uint32_t cert_len, r.u32("certification data size"));
  if (q.cert_data_type != kCertDataPckChain)
    return unimplemented("certification data type {} not supported (5 = PCK chain is)",
                         q.cert_data_type);
  if (cert_len > kMaxCertData)
    return invalid_argument("certification data size {} exceeds {}", cert_len, kMaxCertData);
  MOSS_ASSIGN_OR_RETURN(auto pem, r.take(cert_len, "PCK certificate chain"));
  std::string_view text(reinterpret_cast<const char*>(pem.data()), pem.size());
  // Some quoting enclaves count a C string terminator in the size.
  while (!text.empty() && text.back() == '\0') text.remove_suffix(1);
  if (text.find('\0') != std::string_view::npos)
    return invalid_argument("PCK certificate chain contains a NUL byte");
  q.pck_chain_pem.assign(text);
  return Status::Ok();
}

Status parse_signature_data(Reader& r, Quote& q) {
  MOSS_RETURN_IF_ERROR(r.copy(q.quote_signature, "quote signature"));
  MOSS_RETURN_IF_ERROR(r.copy(q.attestation_key, "attestation key"));
  if (q.header.version == 3) {
    MOSS_RETURN_IF_ERROR(parse_qe_report_cert_data(r, q));
  } else {
    MOSS_ASSIGN_OR_RETURN(q.outer_cert_data_type, r.u16("outer certification data type"));
    MOSS_ASSIGN_OR_RETURN(uint32_t outer_len, r.u32("outer certification data size"));
    if (q.outer_cert_data_type != kCertDataQeReport)
      return unimplemented("outer certification data type {} not supported (6 is)",
                           q.outer_cert_data_type);
    MOSS_ASSIGN_OR_RETURN(auto outer, r.take(outer_len, "QE report certification data"));
    Reader inner(outer);
    MOSS_RETURN_IF_ERROR(parse_qe_report_cert_data(inner, q));
    if (inner.remaining() != 0)
      return invalid_argument("{} unexplained bytes inside QE report certification data",
                              inner.remaining());
  }
  if (r.remaining() != 0)
    return invalid_argument("{} unexplained bytes inside signature data", r.remaining());
  return Status::Ok();
}

void put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v));
  out.push_back(static_cast<uint8_t>(v >> 8));
}
void put32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put(std::vector<uint8_t>& out, std::span<const uint8_t> b) {
  out.insert(out.end(), b.begin(), b.end());
}

}  // namespace

Result<Quote> parse_quote(std::span<const uint8_t> bytes) {
  if (bytes.size() > kMaxQuoteSize)
    return invalid_argument("quote is {} bytes, more than the {} allowed", bytes.size(),
                            kMaxQuoteSize);
  Quote q;
  Reader r(bytes);
  MOSS_RETURN_IF_ERROR(parse_header(r, q.header));
  MOSS_RETURN_IF_ERROR(parse_body(r, q));
  q.signed_region.assign(bytes.begin(), bytes.begin() + r.pos());
  MOSS_ASSIGN_OR_RETURN(q.sig_data_len, r.u32("signature data size"));
  MOSS_ASSIGN_OR_RETURN(auto sig_data, r.take(q.sig_data_len, "signature data"));
  q.trailing_bytes = r.remaining();
  Reader sr(sig_data);
  MOSS_RETURN_IF_ERROR(parse_signature_data(sr, q));
  return q;
}

std::vector<uint8_t> encode_quote(const Quote& q) {
  std::vector<uint8_t> qe;  // QE report certification data
  put(qe, q.qe_report_raw);
  put(qe, q.qe_report_signature);
  put16(qe, static_cast<uint16_t>(q.qe_auth_data.size()));
  put(qe, q.qe_auth_data);
  put16(qe, q.cert_data_type);
  put32(qe, static_cast<uint32_t>(q.pck_chain_pem.size()));
  put(qe, std::span(reinterpret_cast<const uint8_t*>(q.pck_chain_pem.data()), q.pck_chain_pem.size()));
  std::vector<uint8_t> sig;
  put(sig, q.quote_signature);
  put(sig, q.attestation_key);
  if (q.header.version == 3) {
    put(sig, qe);
  } else {
    put16(sig, q.outer_cert_data_type);
    put32(sig, static_cast<uint32_t>(qe.size()));
    put(sig, qe);
  }
  std::vector<uint8_t> out = q.signed_region;
  put32(out, static_cast<uint32_t>(sig.size()));
  put(out, sig);
  return out;
}

bool looks_like_dcap_quote(std::span<const uint8_t> bytes) {
  if (bytes.size() < kQuoteHeaderSize) return false;
  uint16_t version = le16(bytes, 0);
  return version >= 3 && version <= 5 && le16(bytes, 2) == kAttKeyEcdsaP256;
}

}  // namespace moss::attest
