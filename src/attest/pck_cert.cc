#include "attest/pck_cert.h"

#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <optional>

namespace moss::attest {
namespace {

// OID 1.2.840.113741.1.13.1 content octets; sub-fields append one (or, for TCB, two) arcs.
constexpr uint8_t kSgxExtOid[] = {0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x01, 0x0D, 0x01};

struct Tlv {
  uint8_t tag = 0;
  std::span<const uint8_t> value;
};

// Reads one DER TLV from the front of `in` (short and long lengths up to 4 bytes).
Result<Tlv> read_tlv(std::span<const uint8_t>& in) {
  if (in.size() < 2) return invalid_argument("SGX extension: truncated DER");
  Tlv t;
  t.tag = in[0];
  size_t len = in[1];
  size_t hdr = 2;
  if (len & 0x80) {
    size_t n = len & 0x7F;
    if (n == 0 || n > 4 || in.size() < 2 + n) return invalid_argument("SGX extension: bad DER length");
    len = 0;
    for (size_t i = 0; i < n; ++i) len = len << 8 | in[2 + i];
    hdr += n;
  }
  if (len > in.size() - hdr) return invalid_argument("SGX extension: DER length past end");
  t.value = in.subspan(hdr, len);
  in = in.subspan(hdr + len);
  return t;
}

// The last arc after the SGX extension prefix plus `prefix_extra` arcs, or nullopt.
std::optional<uint8_t> sub_arc(std::span<const uint8_t> oid, std::span<const uint8_t> extra) {
  size_t base = sizeof(kSgxExtOid);
  if (oid.size() != base + extra.size() + 1) return std::nullopt;
  if (std::memcmp(oid.data(), kSgxExtOid, base) != 0) return std::nullopt;
  if (!extra.empty() && std::memcmp(oid.data() + base, extra.data(), extra.size()) != 0)
    return std::nullopt;
  return oid[oid.size() - 1];
}

Result<uint32_t> small_uint(const Tlv& t) {
  if ((t.tag != 0x02 && t.tag != 0x0A) || t.value.empty() || t.value.size() > 3)
    return invalid_argument("SGX extension: bad INTEGER");
  uint32_t v = 0;
  for (uint8_t b : t.value) v = v << 8 | b;
  if (t.value[0] & 0x80) return invalid_argument("SGX extension: negative INTEGER");
  return v;
}

template <size_t N>
Status octets(const Tlv& t, std::array<uint8_t, N>& out, const char* what) {
  if (t.tag != 0x04 || t.value.size() != N)
    return invalid_argument("SGX extension: {} must be a {}-byte OCTET STRING", what, N);
  std::memcpy(out.data(), t.value.data(), N);
  return Status::Ok();
}

Status parse_tcb(std::span<const uint8_t> seq, PckExtensions& out) {
  static constexpr uint8_t kTcbArc[] = {0x02};
  uint32_t seen = 0;
  while (!seq.empty()) {
    MOSS_ASSIGN_OR_RETURN(Tlv item, read_tlv(seq));
    if (item.tag != 0x30) return invalid_argument("SGX extension: TCB entry is not a SEQUENCE");
    auto body = item.value;
    MOSS_ASSIGN_OR_RETURN(Tlv oid, read_tlv(body));
    MOSS_ASSIGN_OR_RETURN(Tlv val, read_tlv(body));
    auto arc = oid.tag == 0x06 ? sub_arc(oid.value, kTcbArc) : std::nullopt;
    if (!arc || *arc < 1 || *arc > 18) continue;  // unknown entries are ignored
    if (seen & (1u << *arc)) return invalid_argument("SGX extension: TCB field {} repeated", *arc);
    seen |= 1u << *arc;
    if (*arc <= 16) {
      MOSS_ASSIGN_OR_RETURN(uint32_t svn, small_uint(val));
      if (svn > 255) return invalid_argument("SGX extension: component SVN {} > 255", svn);
      out.tcb_comp_svns[*arc - 1] = static_cast<uint8_t>(svn);
    } else if (*arc == 17) {
      MOSS_ASSIGN_OR_RETURN(uint32_t svn, small_uint(val));
      if (svn > 0xFFFF) return invalid_argument("SGX extension: PCESVN {} too large", svn);
      out.pce_svn = static_cast<uint16_t>(svn);
    } else {
      MOSS_RETURN_IF_ERROR(octets(val, out.cpu_svn, "CPUSVN"));
    }
  }
  if (seen != 0x7FFFE) return invalid_argument("SGX extension: TCB fields missing");
  return Status::Ok();
}

}  // namespace

Result<PckExtensions> parse_pck_extension_der(std::span<const uint8_t> der) {
  MOSS_ASSIGN_OR_RETURN(Tlv top, read_tlv(der));
  if (top.tag != 0x30) return invalid_argument("SGX extension is not a SEQUENCE");
  PckExtensions out;
  bool have_tcb = false, have_fmspc = false, have_pceid = false;
  auto seq = top.value;
  while (!seq.empty()) {
    MOSS_ASSIGN_OR_RETURN(Tlv item, read_tlv(seq));
    if (item.tag != 0x30) return invalid_argument("SGX extension: entry is not a SEQUENCE");
    auto body = item.value;
    MOSS_ASSIGN_OR_RETURN(Tlv oid, read_tlv(body));
    MOSS_ASSIGN_OR_RETURN(Tlv val, read_tlv(body));
    auto arc = oid.tag == 0x06 ? sub_arc(oid.value, {}) : std::nullopt;
    if (!arc) continue;
    if (*arc == 2) {
      if (have_tcb || val.tag != 0x30) return invalid_argument("SGX extension: bad TCB field");
      MOSS_RETURN_IF_ERROR(parse_tcb(val.value, out));
      have_tcb = true;
    } else if (*arc == 3) {
      if (have_pceid) return invalid_argument("SGX extension: PCE-ID repeated");
      MOSS_RETURN_IF_ERROR(octets(val, out.pce_id, "PCE-ID"));
      have_pceid = true;
    } else if (*arc == 4) {
      if (have_fmspc) return invalid_argument("SGX extension: FMSPC repeated");
      MOSS_RETURN_IF_ERROR(octets(val, out.fmspc, "FMSPC"));
      have_fmspc = true;
    }
  }
  if (!have_tcb || !have_fmspc || !have_pceid)
    return invalid_argument("SGX extension lacks TCB, FMSPC or PCE-ID");
  return out;
}

Result<PckExtensions> parse_pck_extensions(X509* pck_cert) {
  ASN1_OBJECT* obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
  int idx = obj ? X509_get_ext_by_OBJ(pck_cert, obj, -1) : -1;
  ASN1_OBJECT_free(obj);
  if (idx < 0) return invalid_argument("PCK certificate has no SGX extension");
  X509_EXTENSION* ext = X509_get_ext(pck_cert, idx);
  const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(ext);
  return parse_pck_extension_der(
      std::span(ASN1_STRING_get0_data(data), static_cast<size_t>(ASN1_STRING_length(data))));
}

}  // namespace moss::attest
