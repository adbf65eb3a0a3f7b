#include "crypto/aead.h"

#include "common/ossl.h"

#include <climits>

namespace moss::crypto {

struct AesGcm::Impl {
  ossl::CipherCtxPtr enc;
  ossl::CipherCtxPtr dec;
};

namespace {

// EVP_*Update takes int lengths; feed larger buffers in slices (GCM is a stream mode, so slicing
// does not change the result).
constexpr size_t kMaxSlice = size_t{1} << 30;

bool update(EVP_CIPHER_CTX* ctx, bool encrypt, const uint8_t* in, size_t n, uint8_t* out) {
  while (n > 0) {
    int len = 0;
    int slice = static_cast<int>(n < kMaxSlice ? n : kMaxSlice);
    int ok = encrypt ? EVP_EncryptUpdate(ctx, out, &len, in, slice)
                     : EVP_DecryptUpdate(ctx, out, &len, in, slice);
    if (ok != 1 || len != slice) return false;
    in += slice;
    out += slice;
    n -= static_cast<size_t>(slice);
  }
  return true;
}

bool add_aad(EVP_CIPHER_CTX* ctx, bool encrypt, std::span<const uint8_t> aad) {
  if (aad.empty()) return true;
  if (aad.size() > kMaxSlice) return false;
  int len = 0;
  int n = static_cast<int>(aad.size());
  return (encrypt ? EVP_EncryptUpdate(ctx, nullptr, &len, aad.data(), n)
                  : EVP_DecryptUpdate(ctx, nullptr, &len, aad.data(), n)) == 1;
}

}  // namespace

Result<AesGcm> AesGcm::create(std::span<const uint8_t> key) {
  if (key.size() != kAesGcmKeySize) {
    return invalid_argument("AES-256-GCM key must be 32 bytes, got {}", key.size());
  }
  auto impl = std::make_unique<Impl>();
  impl->enc.reset(EVP_CIPHER_CTX_new());
  impl->dec.reset(EVP_CIPHER_CTX_new());
  if (!impl->enc || !impl->dec) return ossl_error("AES-256-GCM context");
  // Key now, nonce per message: EVP keeps the expanded key between messages.
  if (EVP_EncryptInit_ex(impl->enc.get(), EVP_aes_256_gcm(), nullptr, key.data(), nullptr) != 1 ||
      EVP_DecryptInit_ex(impl->dec.get(), EVP_aes_256_gcm(), nullptr, key.data(), nullptr) != 1) {
    return ossl_error("AES-256-GCM key setup");
  }
  return AesGcm(std::move(impl));
}

AesGcm::AesGcm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AesGcm::AesGcm(AesGcm&&) noexcept = default;
AesGcm& AesGcm::operator=(AesGcm&&) noexcept = default;
AesGcm::~AesGcm() = default;

Status AesGcm::seal(std::span<const uint8_t, kAesGcmNonceSize> nonce,
                    std::span<const uint8_t> aad, std::span<const uint8_t> in,
                    std::span<uint8_t> out, std::span<uint8_t, kAesGcmTagSize> tag) {
  if (out.size() != in.size()) return invalid_argument("AES-GCM seal: output size mismatch");
  EVP_CIPHER_CTX* ctx = impl_->enc.get();
  int len = 0;
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data()) != 1 ||
      !add_aad(ctx, true, aad) || !update(ctx, true, in.data(), in.size(), out.data()) ||
      EVP_EncryptFinal_ex(ctx, nullptr, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kAesGcmTagSize, tag.data()) != 1) {
    return ossl_error("AES-256-GCM seal");
  }
  return Status::Ok();
}

Status AesGcm::open(std::span<const uint8_t, kAesGcmNonceSize> nonce,
                    std::span<const uint8_t> aad, std::span<const uint8_t> in,
                    std::span<const uint8_t, kAesGcmTagSize> tag, std::span<uint8_t> out) {
  if (out.size() != in.size()) return invalid_argument("AES-GCM open: output size mismatch");
  EVP_CIPHER_CTX* ctx = impl_->dec.get();
  int len = 0;
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data()) != 1 ||
      !add_aad(ctx, false, aad) || !update(ctx, false, in.data(), in.size(), out.data()) ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kAesGcmTagSize,
                          const_cast<uint8_t*>(tag.data())) != 1) {
    return ossl_error("AES-256-GCM open");
  }
  if (EVP_DecryptFinal_ex(ctx, nullptr, &len) != 1) {
    ossl_clear();
    secure_wipe(out.data(), out.size());
    return unauthenticated("AES-256-GCM authentication failed");
  }
  return Status::Ok();
}

}  // namespace moss::crypto
