#include "crypto/ossl_util.h"

#include <openssl/err.h>
#include <openssl/pem.h>

namespace moss::crypto::detail {

Status ossl_error(std::string_view what) {
  unsigned long code = ERR_get_error();
  char reason[256] = "unknown OpenSSL error";
  if (code != 0) ERR_error_string_n(code, reason, sizeof(reason));
  ERR_clear_error();
  return internal_error("{}: {}", what, reason);
}

void ossl_clear() { ERR_clear_error(); }

Result<SecretBytes> private_key_pem(EVP_PKEY* pkey, std::string_view what) {
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), pkey, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
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

Result<PkeyPtr> public_key_from_pem(std::string_view pem, size_t max_bytes, std::string_view what) {
  if (pem.size() > max_bytes) return invalid_argument("{} PEM too large", what);
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return ossl_error("memory BIO");
  PkeyPtr pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) {
    ossl_clear();
    return invalid_argument("not a PEM public key");
  }
  return pkey;
}

Result<PkeyPtr> private_key_from_pem(std::span<const uint8_t> pem, size_t max_bytes,
                                     std::string_view what) {
  if (pem.size() > max_bytes) return invalid_argument("{} PEM too large", what);
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return ossl_error("memory BIO");
  static pem_password_cb* const kNoPrompt = [](char*, int, int, void*) { return -1; };
  PkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, kNoPrompt, nullptr));
  if (!pkey) {
    ossl_clear();
    return invalid_argument("not an unencrypted PEM private key");
  }
  return pkey;
}

}  // namespace moss::crypto::detail
