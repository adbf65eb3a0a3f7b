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

}  // namespace moss::crypto::detail
