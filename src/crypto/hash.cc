#include "crypto/hash.h"

#include "common/ossl.h"

#include <openssl/core_names.h>
#include <openssl/params.h>

namespace moss::crypto {

Result<Sha256Digest> hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  ossl::MacPtr mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!mac) return ossl_error("HMAC unavailable");
  ossl::MacCtxPtr ctx(EVP_MAC_CTX_new(mac.get()));
  if (!ctx) return ossl_error("HMAC context");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  // EVP_MAC_init rejects a NULL key even when it is empty; any non-null pointer works then.
  static const uint8_t kEmpty = 0;
  const uint8_t* key_ptr = key.empty() ? &kEmpty : key.data();
  Sha256Digest out{};
  size_t len = 0;
  if (EVP_MAC_init(ctx.get(), key_ptr, key.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1 || len != out.size()) {
    return ossl_error("HMAC-SHA256");
  }
  return out;
}

}  // namespace moss::crypto
