#include "store/sealer.h"

#include "common/encoding.h"
#include "crypto/aead.h"
#include "crypto/hkdf.h"
#include "crypto/random.h"

namespace moss::store {

namespace {
constexpr uint8_t kSealVersion = 1;
constexpr size_t kOverhead = 1 + crypto::kAesGcmNonceSize + crypto::kAesGcmTagSize;
}  // namespace

Result<Sealer> Sealer::create(SecretBytes key) {
  if (key.size() != crypto::kAesGcmKeySize) return invalid_argument("sealing key must be 32 bytes");
  return Sealer(std::move(key));
}

Result<std::vector<uint8_t>> Sealer::seal(std::string_view aad,
                                          std::span<const uint8_t> plaintext) const {
  MOSS_ASSIGN_OR_RETURN(auto gcm, crypto::AesGcm::create(key_.span()));
  std::vector<uint8_t> out(kOverhead + plaintext.size());
  out[0] = kSealVersion;
  auto nonce = std::span<uint8_t, crypto::kAesGcmNonceSize>(out.data() + 1, crypto::kAesGcmNonceSize);
  MOSS_RETURN_IF_ERROR(crypto::random_bytes(nonce));
  uint8_t* ct = out.data() + 1 + crypto::kAesGcmNonceSize;
  auto tag = std::span<uint8_t, crypto::kAesGcmTagSize>(ct + plaintext.size(), crypto::kAesGcmTagSize);
  MOSS_RETURN_IF_ERROR(gcm.seal(nonce, as_bytes(aad), plaintext,
                                std::span<uint8_t>(ct, plaintext.size()), tag));
  return out;
}

Result<SecretBytes> Sealer::open(std::string_view aad, std::span<const uint8_t> sealed) const {
  if (sealed.size() < kOverhead || sealed[0] != kSealVersion) {
    return Status(ErrorCode::kDataLoss, "sealed-value-invalid: sealed value is malformed");
  }
  MOSS_ASSIGN_OR_RETURN(auto gcm, crypto::AesGcm::create(key_.span()));
  size_t n = sealed.size() - kOverhead;
  auto nonce = std::span<const uint8_t, crypto::kAesGcmNonceSize>(sealed.data() + 1,
                                                                  crypto::kAesGcmNonceSize);
  const uint8_t* ct = sealed.data() + 1 + crypto::kAesGcmNonceSize;
  auto tag = std::span<const uint8_t, crypto::kAesGcmTagSize>(ct + n, crypto::kAesGcmTagSize);
  SecretBytes out(n);
  Status s = gcm.open(nonce, as_bytes(aad), std::span<const uint8_t>(ct, n), tag, out.span());
  if (!s.ok()) {
    return Status(ErrorCode::kDataLoss,
                  "sealed-value-invalid: sealed value does not open (wrong sealing key or altered)");
  }
  return out;
}

Result<SecretBytes> Sealer::derive_subkey(std::string_view info) const {
  return crypto::hkdf_sha256(key_.span(), {}, as_bytes(info), 32);
}

}  // namespace moss::store
