#include "attest/ecdsa_p256.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>
#include <openssl/params.h>

#include <cstring>

namespace moss::attest {

Result<ossl::PkeyPtr> p256_key_from_raw(std::span<const uint8_t> xy) {
  if (xy.size() != 64) return invalid_argument("P-256 public key must be 64 bytes, got {}", xy.size());
  uint8_t point[65];
  point[0] = 0x04;  // uncompressed point encoding
  std::memcpy(point + 1, xy.data(), 64);
  ossl::Ptr<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free> bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) != 1) {
    return ossl_error("P-256 key parameters");
  }
  ossl::Ptr<OSSL_PARAM, OSSL_PARAM_free> params(OSSL_PARAM_BLD_to_param(bld.get()));
  ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || !params || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return invalid_argument("not a P-256 point: {}", ossl_error_text());
  }
  ossl::PkeyPtr key(raw);
  // fromdata does not check that the point is on the curve; the quick check does (P-256 has
  // cofactor 1, so on-curve is enough and the costly order multiplication is skipped).
  ossl::PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check_quick(check.get()) != 1) {
    ossl_clear();
    return invalid_argument("P-256 point is not on the curve");
  }
  return key;
}

Status verify_ecdsa_raw(EVP_PKEY* key, std::span<const uint8_t> message,
                        std::span<const uint8_t> raw_sig) {
  if (raw_sig.size() != 64) return invalid_argument("ECDSA signature must be 64 bytes");
  ossl::Ptr<ECDSA_SIG, ECDSA_SIG_free> sig(ECDSA_SIG_new());
  ossl::BnPtr r(BN_bin2bn(raw_sig.data(), 32, nullptr));
  ossl::BnPtr s(BN_bin2bn(raw_sig.data() + 32, 32, nullptr));
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    return ossl_error("building ECDSA signature");
  }
  (void)r.release();  // owned by sig now
  (void)s.release();
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_len <= 0) return ossl_error("encoding ECDSA signature");
  ossl::MdCtxPtr ctx(EVP_MD_CTX_new());
  int rc = ctx ? EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) : 0;
  if (rc == 1) rc = EVP_DigestVerify(ctx.get(), der, der_len, message.data(), message.size());
  OPENSSL_free(der);
  ossl_clear();
  if (rc != 1) return unauthenticated("ECDSA signature does not verify");
  return Status::Ok();
}

}  // namespace moss::attest
