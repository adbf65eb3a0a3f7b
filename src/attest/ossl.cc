#include "attest/ossl.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <cstdlib>
#include <cstring>

namespace moss::attest::ossl {
namespace {

struct BioFree { void operator()(BIO* p) const { BIO_free(p); } };
struct MdCtxFree { void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); } };
struct StoreCtxFree { void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); } };
struct SigFree { void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); } };
struct StackFree { void operator()(STACK_OF(X509)* p) const { sk_X509_free(p); } };

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string last_error() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

Sha256 sha256(std::span<const uint8_t> data) {
  Sha256 out{};
  SHA256(data.data(), data.size(), out.data());
  return out;
}

Sha256 sha256(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  Sha256 out{};
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), a.data(), a.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), b.data(), b.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1)
    std::abort();  // allocation failure: crash, as for OOM
  return out;
}

std::string to_hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

Result<std::vector<uint8_t>> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return invalid_argument("hex string has odd length {}", hex.size());
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return invalid_argument("not a hex string at offset {}", 2 * i);
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

Result<PkeyPtr> p256_key_from_raw(std::span<const uint8_t> xy) {
  if (xy.size() != 64) return invalid_argument("P-256 public key must be 64 bytes, got {}", xy.size());
  uint8_t point[65];
  point[0] = 0x04;  // uncompressed point encoding
  std::memcpy(point + 1, xy.data(), 64);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point));
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  OSSL_PARAM_BLD_free(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* key = nullptr;
  bool ok = ctx && params && EVP_PKEY_fromdata_init(ctx) == 1 &&
            EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) == 1;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  if (!ok) return invalid_argument("not a P-256 point: {}", last_error());
  // fromdata does not check that the point is on the curve; the quick check does (P-256 has
  // cofactor 1, so on-curve is enough and the costly order multiplication is skipped).
  EVP_PKEY_CTX* check = EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr);
  ok = check && EVP_PKEY_public_check_quick(check) == 1;
  EVP_PKEY_CTX_free(check);
  if (!ok) {
    EVP_PKEY_free(key);
    return invalid_argument("P-256 point is not on the curve");
  }
  return PkeyPtr(key);
}

Status verify_ecdsa_raw(EVP_PKEY* key, std::span<const uint8_t> message,
                        std::span<const uint8_t> raw_sig) {
  if (raw_sig.size() != 64) return invalid_argument("ECDSA signature must be 64 bytes");
  std::unique_ptr<ECDSA_SIG, SigFree> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(raw_sig.data(), 32, nullptr);
  BIGNUM* s = BN_bin2bn(raw_sig.data() + 32, 32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return internal_error("building ECDSA signature: {}", last_error());
  }
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_len <= 0) return internal_error("encoding ECDSA signature: {}", last_error());
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  int rc = ctx ? EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) : 0;
  if (rc == 1) rc = EVP_DigestVerify(ctx.get(), der, der_len, message.data(), message.size());
  OPENSSL_free(der);
  ERR_clear_error();
  if (rc != 1) return unauthenticated("ECDSA signature does not verify");
  return Status::Ok();
}

Result<std::vector<X509Ptr>> parse_pem_chain(std::string_view pem, size_t max_certs) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return internal_error("BIO_new_mem_buf failed");
  std::vector<X509Ptr> certs;
  while (true) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (!cert) break;
    certs.emplace_back(cert);
    if (certs.size() > max_certs) return invalid_argument("more than {} certificates", max_certs);
  }
  ERR_clear_error();  // the loop ends on a "no start line" error
  if (certs.empty()) return invalid_argument("no PEM certificate found");
  return certs;
}

Result<X509CrlPtr> parse_der_crl(std::span<const uint8_t> der) {
  const unsigned char* p = der.data();
  X509_CRL* crl = d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size()));
  if (!crl || p != der.data() + der.size()) {
    X509_CRL_free(crl);
    ERR_clear_error();
    return invalid_argument("not a DER CRL");
  }
  return X509CrlPtr(crl);
}

std::vector<uint8_t> cert_der(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len <= 0) return {};
  std::vector<uint8_t> out(der, der + len);
  OPENSSL_free(der);
  return out;
}

Sha256 cert_fingerprint(X509* cert) { return sha256(cert_der(cert)); }

std::string common_name(const X509_NAME* name) {
  char buf[256] = {0};
  if (X509_NAME_get_text_by_NID(const_cast<X509_NAME*>(name), NID_commonName, buf, sizeof(buf)) < 0)
    return "";
  return buf;
}

Status verify_chain(X509* leaf, std::span<X509* const> untrusted, X509* trusted_root,
                    std::span<X509_CRL* const> crls, std::time_t at) {
  StorePtr store(X509_STORE_new());
  if (!store || X509_STORE_add_cert(store.get(), trusted_root) != 1)
    return internal_error("building X509 store: {}", last_error());
  for (X509_CRL* crl : crls) X509_STORE_add_crl(store.get(), crl);
  std::unique_ptr<STACK_OF(X509), StackFree> chain(sk_X509_new_null());
  for (X509* c : untrusted) sk_X509_push(chain.get(), c);
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf, chain.get()) != 1)
    return internal_error("X509_STORE_CTX_init: {}", last_error());
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, at);
  // Only the pinned root is a trust anchor; partial chains to an intermediate are not allowed.
  unsigned long flags = X509_V_FLAG_X509_STRICT;
  if (!crls.empty()) flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
  X509_VERIFY_PARAM_set_flags(param, flags);
  int rc = X509_verify_cert(ctx.get());
  ERR_clear_error();
  if (rc != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    X509* bad = X509_STORE_CTX_get_current_cert(ctx.get());
    std::string who = bad ? common_name(X509_get_subject_name(bad)) : std::string("?");
    return unauthenticated("{} (at '{}')", X509_verify_cert_error_string(err), who);
  }
  return Status::Ok();
}

Result<std::time_t> asn1_time_to_unix(const ASN1_TIME* t) {
  struct tm tm {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return invalid_argument("bad ASN.1 time");
  return timegm(&tm);
}

Result<std::time_t> parse_rfc3339(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+00:00)
  if (text.size() < 20) return invalid_argument("bad RFC 3339 time '{}'", text);
  auto num = [&](size_t pos, size_t len, int& out) {
    out = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  struct tm tm {};
  int y, mo, d, h, mi, s;
  bool ok = num(0, 4, y) && text[4] == '-' && num(5, 2, mo) && text[7] == '-' && num(8, 2, d) &&
            (text[10] == 'T' || text[10] == 't' || text[10] == ' ') && num(11, 2, h) &&
            text[13] == ':' && num(14, 2, mi) && text[16] == ':' && num(17, 2, s);
  if (!ok) return invalid_argument("bad RFC 3339 time '{}'", text);
  size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
  }
  std::string_view zone = text.substr(pos);
  if (zone != "Z" && zone != "z" && zone != "+00:00")
    return invalid_argument("time '{}' must be in UTC (Z)", text);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
    return invalid_argument("bad RFC 3339 time '{}'", text);
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return timegm(&tm);
}

std::string format_rfc3339(std::time_t t) {
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace moss::attest::ossl
