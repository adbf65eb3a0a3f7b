#include "net/tls_credentials.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>

#include "common/file_util.h"
#include "common/ossl.h"
#include "common/rfc3339.h"
#include "common/sha256.h"

namespace moss::net {
namespace {

constexpr size_t kMaxPemFileBytes = 1 << 20;
constexpr size_t kMaxCertDerBytes = 1 << 20;

using ossl::BioPtr;
using ossl::BnPtr;
using ossl::PkeyPtr;
using ossl::X509Ptr;
using ObjPtr = ossl::Ptr<ASN1_OBJECT, ASN1_OBJECT_free>;
using OctetPtr = ossl::Ptr<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using ExtPtr = ossl::Ptr<X509_EXTENSION, X509_EXTENSION_free>;
using NamesPtr = ossl::Ptr<GENERAL_NAMES, GENERAL_NAMES_free>;

Result<PkeyPtr> parse_private_key(const SecretBytes& pem) {
  return ossl::read_private_key_pem(pem.span(), kMaxPemFileBytes, "private key");
}

Result<X509Ptr> parse_der(std::span<const uint8_t> der) {
  if (der.empty() || der.size() > kMaxCertDerBytes) return invalid_argument("certificate DER is empty or too large");
  const uint8_t* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) {
    ossl_clear();
    return invalid_argument("certificate DER does not parse");
  }
  if (p != der.data() + der.size()) return invalid_argument("certificate DER has trailing bytes");
  return cert;
}

std::string bio_string(BIO* bio) {
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio, &mem);
  return mem ? std::string(mem->data, mem->length) : std::string();
}

Status add_subject_alt_names(X509* cert, const CertificateOptions& options) {
  if (options.dns_names.empty() && options.ip_addresses.empty()) return Status::Ok();
  NamesPtr names(sk_GENERAL_NAME_new_null());
  for (const auto& dns : options.dns_names) {
    GENERAL_NAME* gn = GENERAL_NAME_new();
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    ASN1_STRING_set(s, dns.data(), static_cast<int>(dns.size()));
    GENERAL_NAME_set0_value(gn, GEN_DNS, s);
    sk_GENERAL_NAME_push(names.get(), gn);
  }
  for (const auto& ip : options.ip_addresses) {
    ASN1_OCTET_STRING* octets = a2i_IPADDRESS(ip.c_str());
    if (octets == nullptr) {
      ossl_clear();
      return invalid_argument("certificate IP SAN '{}' is not an IP address", ip);
    }
    GENERAL_NAME* gn = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(gn, GEN_IPADD, octets);
    sk_GENERAL_NAME_push(names.get(), gn);
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1)
    return ossl_error("adding subjectAltName");
  return Status::Ok();
}

Status add_extension(X509* cert, const CertificateExtension& ext) {
  ObjPtr obj(OBJ_txt2obj(ext.oid.c_str(), /*no_name=*/1));
  if (!obj) {
    ossl_clear();
    return invalid_argument("extension OID '{}' is not a dotted OID", ext.oid);
  }
  OctetPtr data(ASN1_OCTET_STRING_new());
  if (ASN1_OCTET_STRING_set(data.get(), ext.value.data(), static_cast<int>(ext.value.size())) != 1)
    return internal_error("extension value too large");
  ExtPtr x(X509_EXTENSION_create_by_OBJ(nullptr, obj.get(), ext.critical ? 1 : 0, data.get()));
  if (!x || X509_add_ext(cert, x.get(), -1) != 1)
    return ossl_error(fmt::format("adding extension {}", ext.oid));
  return Status::Ok();
}

Status set_serial_and_validity(X509* cert, const CertificateOptions& options) {
  uint8_t serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) return internal_error("RAND_bytes failed");
  serial[0] &= 0x7f;  // positive INTEGER
  serial[0] |= 0x01;  // and non-zero
  BnPtr bn(BN_bin2bn(serial, sizeof(serial), nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert))) return internal_error("serial number");
  // By default valid from one minute in the past (absorbs small clock differences between
  // peers) until `lifetime` from now.
  const std::time_t now = std::time(nullptr);
  std::time_t from = options.not_before.value_or(now - 60);
  std::time_t until = options.not_before.value_or(now) + static_cast<std::time_t>(options.lifetime.count());
  if (!X509_time_adj_ex(X509_getm_notBefore(cert), 0, 0, &from) ||
      !X509_time_adj_ex(X509_getm_notAfter(cert), 0, 0, &until))
    return invalid_argument("certificate validity not representable");
  return Status::Ok();
}

}  // namespace

Result<SecretBytes> generate_private_key_pem(KeyType type) {
  PkeyPtr key(type == KeyType::kEd25519 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                                        : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return ossl_error("key generation");
  return ossl::private_key_pem(key.get(), "encoding private key");
}

Result<std::vector<uint8_t>> public_key_spki_der(const SecretBytes& key_pem) {
  MOSS_ASSIGN_OR_RETURN(PkeyPtr key, parse_private_key(key_pem));
  int len = i2d_PUBKEY(key.get(), nullptr);
  if (len <= 0) return ossl_error("encoding public key");
  std::vector<uint8_t> out(static_cast<size_t>(len));
  uint8_t* p = out.data();
  i2d_PUBKEY(key.get(), &p);
  return out;
}

Result<std::array<uint8_t, 32>> public_key_sha256(const SecretBytes& key_pem) {
  MOSS_ASSIGN_OR_RETURN(auto spki, public_key_spki_der(key_pem));
  return sha256(spki);
}

Result<std::string> self_signed_certificate_pem(const SecretBytes& key_pem, const CertificateOptions& options) {
  if (options.lifetime.count() <= 0) return invalid_argument("certificate lifetime must be positive");
  MOSS_ASSIGN_OR_RETURN(PkeyPtr key, parse_private_key(key_pem));
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);  // v3
  MOSS_RETURN_IF_ERROR(set_serial_and_validity(cert.get(), options));
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!options.common_name.empty() &&
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(options.common_name.c_str()),
                                 static_cast<int>(options.common_name.size()), -1, 0) != 1)
    return invalid_argument("certificate common name not usable: {}", ossl_error_text());
  X509_set_issuer_name(cert.get(), name);
  MOSS_RETURN_IF_ERROR(add_subject_alt_names(cert.get(), options));
  for (const auto& ext : options.extensions) MOSS_RETURN_IF_ERROR(add_extension(cert.get(), ext));
  const EVP_MD* md = EVP_PKEY_get_id(key.get()) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  if (X509_sign(cert.get(), key.get(), md) <= 0) return ossl_error("signing certificate");
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(bio.get(), cert.get()) != 1) return internal_error("PEM encoding failed");
  return bio_string(bio.get());
}

Result<TlsCredentials> generate_self_signed(const CertificateOptions& options, KeyType type) {
  TlsCredentials out;
  MOSS_ASSIGN_OR_RETURN(out.key_pem, generate_private_key_pem(type));
  MOSS_ASSIGN_OR_RETURN(out.cert_pem, self_signed_certificate_pem(out.key_pem, options));
  return out;
}

Result<std::vector<uint8_t>> certificate_pem_to_der(std::string_view pem) {
  if (pem.size() > kMaxPemFileBytes) return invalid_argument("certificate PEM too large");
  MOSS_ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ossl::parse_pem_chain(pem, kMaxChainCertificates));
  std::vector<uint8_t> der = ossl::certificate_der(certs[0].get());
  if (der.empty()) return internal_error("DER encoding failed");
  return der;
}

Result<std::string> certificate_der_to_pem(std::span<const uint8_t> der) {
  MOSS_ASSIGN_OR_RETURN(X509Ptr cert, parse_der(der));
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(bio.get(), cert.get()) != 1) return internal_error("PEM encoding failed");
  return bio_string(bio.get());
}

Result<std::vector<uint8_t>> certificate_spki_der(std::span<const uint8_t> cert_der) {
  MOSS_ASSIGN_OR_RETURN(X509Ptr cert, parse_der(cert_der));
  X509_PUBKEY* pub = X509_get_X509_PUBKEY(cert.get());
  int len = pub ? i2d_X509_PUBKEY(pub, nullptr) : -1;
  if (len <= 0) return invalid_argument("certificate has no encodable public key");
  std::vector<uint8_t> out(static_cast<size_t>(len));
  uint8_t* p = out.data();
  i2d_X509_PUBKEY(pub, &p);
  return out;
}

Result<std::array<uint8_t, 32>> certificate_public_key_sha256(std::span<const uint8_t> cert_der) {
  MOSS_ASSIGN_OR_RETURN(auto spki, certificate_spki_der(cert_der));
  return sha256(spki);
}

Result<std::optional<CertificateExtension>> certificate_extension(std::span<const uint8_t> cert_der,
                                                                  std::string_view oid) {
  MOSS_ASSIGN_OR_RETURN(X509Ptr cert, parse_der(cert_der));
  std::string oid_str(oid);
  ObjPtr obj(OBJ_txt2obj(oid_str.c_str(), 1));
  if (!obj) {
    ossl_clear();
    return invalid_argument("'{}' is not a dotted OID", oid);
  }
  int index = X509_get_ext_by_OBJ(cert.get(), obj.get(), -1);
  if (index < 0) return std::optional<CertificateExtension>();
  if (X509_get_ext_by_OBJ(cert.get(), obj.get(), index) >= 0)
    return invalid_argument("certificate carries extension {} more than once", oid);
  X509_EXTENSION* ext = X509_get_ext(cert.get(), index);
  ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(ext);
  CertificateExtension out;
  out.oid = oid_str;
  out.critical = X509_EXTENSION_get_critical(ext) > 0;
  const uint8_t* bytes = ASN1_STRING_get0_data(data);
  out.value.assign(bytes, bytes + ASN1_STRING_length(data));
  return std::optional<CertificateExtension>(std::move(out));
}

Result<CertificateValidity> certificate_validity(std::span<const uint8_t> cert_der) {
  MOSS_ASSIGN_OR_RETURN(X509Ptr cert, parse_der(cert_der));
  CertificateValidity v;
  MOSS_ASSIGN_OR_RETURN(v.not_before, ossl::asn1_time_to_unix(X509_get0_notBefore(cert.get())));
  MOSS_ASSIGN_OR_RETURN(v.not_after, ossl::asn1_time_to_unix(X509_get0_notAfter(cert.get())));
  return v;
}

Status check_certificate_validity(std::span<const uint8_t> cert_der, std::time_t at,
                                  std::chrono::seconds skew) {
  auto v = certificate_validity(cert_der);
  if (!v.ok()) return unauthenticated("certificate validity unreadable: {}", v.status().message());
  const auto s = static_cast<std::time_t>(skew.count());
  if (at < v->not_before - s)
    return unauthenticated("certificate not yet valid (valid from {}, now {})", format_rfc3339(v->not_before), format_rfc3339(at));
  if (at > v->not_after + s)
    return unauthenticated("certificate expired (valid until {}, now {})", format_rfc3339(v->not_after), format_rfc3339(at));
  return Status::Ok();
}

Result<std::string> certificate_common_name(std::span<const uint8_t> cert_der) {
  MOSS_ASSIGN_OR_RETURN(X509Ptr cert, parse_der(cert_der));
  X509_NAME* name = X509_get_subject_name(cert.get());
  int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return std::string();
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index)));
  if (len < 0) return invalid_argument("certificate common name is not a valid string");
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

Result<SecretBytes> private_key_pem_from_string(std::string_view pem) {
  SecretBytes out(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pem.data()), pem.size()));
  MOSS_RETURN_IF_ERROR(parse_private_key(out).status());
  return out;
}

}  // namespace moss::net
