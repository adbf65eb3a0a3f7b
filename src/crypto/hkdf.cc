#include "crypto/hkdf.h"

#include "common/ossl.h"

#include <openssl/core_names.h>
#include <openssl/params.h>

namespace moss::crypto {

Result<SecretBytes> hkdf_sha256(std::span<const uint8_t> ikm, std::span<const uint8_t> salt,
                                std::span<const uint8_t> info, size_t length) {
  if (length == 0 || length > 255 * 32) {
    return invalid_argument("HKDF-SHA256: output length {} outside 1..8160", length);
  }
  ossl::KdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) return ossl_error("HKDF unavailable");
  ossl::KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return ossl_error("HKDF context");
  // OSSL_PARAM wants non-const pointers; OpenSSL only reads them.
  auto ptr = [](std::span<const uint8_t> s) {
    static uint8_t kEmpty = 0;
    return s.empty() ? static_cast<void*>(&kEmpty) : const_cast<uint8_t*>(s.data());
  };
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  int n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ptr(ikm), ikm.size());
  // Leaving the salt out (rather than passing it empty) gives RFC 5869's HashLen zero bytes.
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, ptr(salt), salt.size());
  }
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, ptr(info), info.size());
  params[n] = OSSL_PARAM_construct_end();
  SecretBytes out(length);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return ossl_error("HKDF-SHA256");
  }
  return out;
}

}  // namespace moss::crypto
