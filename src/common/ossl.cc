#include "common/ossl.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <climits>

namespace moss {

std::string ossl_error_text() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char reason[256];
    ERR_error_string_n(code, reason, sizeof(reason));
    if (!out.empty()) out += "; ";
    out += reason;
  }
  return out.empty() ? "no OpenSSL detail" : out;
}

Status ossl_error(std::string_view what) { return internal_error("{}: {}", what, ossl_error_text()); }

void ossl_clear() { ERR_clear_error(); }

namespace ossl {

BioPtr memory_bio(std::span<const uint8_t> bytes) {
  if (bytes.size() > INT_MAX) return nullptr;
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

BioPtr memory_bio(std::string_view text) {
  return memory_bio(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

Result<PkeyPtr> read_public_key_pem(std::string_view pem, size_t max_bytes, std::string_view what) {
  if (pem.size() > max_bytes) return invalid_argument("{} PEM too large", what);
  BioPtr bio = memory_bio(pem);
  if (!bio) return ossl_error("memory BIO");
  PkeyPtr pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) {
    ossl_clear();
    return invalid_argument("not a PEM public key");
  }
  return pkey;
}

Result<PkeyPtr> read_private_key_pem(std::span<const uint8_t> pem, size_t max_bytes,
                                     std::string_view what) {
  if (pem.size() > max_bytes) return invalid_argument("{} PEM too large", what);
  BioPtr bio = memory_bio(pem);
  if (!bio) return ossl_error("memory BIO");
  static pem_password_cb* const kNoPrompt = [](char*, int, int, void*) { return -1; };
  PkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, kNoPrompt, nullptr));
  if (!pkey) {
    ossl_clear();
    return invalid_argument("not an unencrypted PEM private key");
  }
  return pkey;
}

Result<SecretBytes> private_key_pem(EVP_PKEY* pkey, std::string_view what) {
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!pkey || !bio ||
      PEM_write_bio_PrivateKey(bio.get(), pkey, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return ossl_error(what);
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return SecretBytes(std::span<const uint8_t>(reinterpret_cast<uint8_t*>(data), static_cast<size_t>(len)));
}

Result<std::string> public_key_pem(EVP_PKEY* pkey, std::string_view what) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!pkey || !bio || PEM_write_bio_PUBKEY(bio.get(), pkey) != 1) return ossl_error(what);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

Result<std::vector<X509Ptr>> parse_pem_chain(std::string_view pem, size_t max_certs) {
  BioPtr bio = memory_bio(pem);
  if (!bio) return ossl_error("memory BIO");
  std::vector<X509Ptr> certs;
  while (X509Ptr cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    if (certs.size() == max_certs) {
      ossl_clear();
      return invalid_argument("more than {} certificates", max_certs);
    }
    certs.push_back(std::move(cert));
  }
  ossl_clear();  // the loop ends on a "no start line" error
  if (certs.empty()) return invalid_argument("no PEM certificate found");
  return certs;
}

std::vector<uint8_t> certificate_der(X509* cert) {
  int len = i2d_X509(cert, nullptr);
  if (len <= 0) {
    ossl_clear();
    return {};
  }
  std::vector<uint8_t> out(static_cast<size_t>(len));
  uint8_t* p = out.data();
  i2d_X509(cert, &p);
  return out;
}

Result<std::time_t> asn1_time_to_unix(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    ossl_clear();
    return invalid_argument("malformed ASN.1 time");
  }
  return timegm(&tm);
}

}  // namespace ossl
}  // namespace moss
