#include "crypto/recovery_key.h"

#include "common/encoding.h"
#include "common/file_util.h"
#include "crypto/hash.h"
#include "common/ossl.h"

#include <openssl/core_names.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cstring>

namespace moss::crypto {

namespace {

constexpr size_t kMaxPemBytes = 16 * 1024;
constexpr char kOaepLabel[] = "moss-keyservice-recovery-v1";

Status check_rsa(EVP_PKEY* pkey) {
  if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
    return invalid_argument("recovery-key-weak: the recovery key is not an RSA key");
  }
  if (EVP_PKEY_get_bits(pkey) < kMinRecoveryKeyBits) {
    return invalid_argument("recovery-key-weak: the recovery key has {} bits (at least {} needed)",
                            EVP_PKEY_get_bits(pkey), kMinRecoveryKeyBits);
  }
  return Status::Ok();
}

Result<std::string> fingerprint_of(EVP_PKEY* pkey) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(pkey, &der);
  if (len <= 0) return ossl_error("recovery public key DER");
  Sha256Digest d = sha256(std::span<const uint8_t>(der, static_cast<size_t>(len)));
  OPENSSL_free(der);
  return hex_encode(d);
}

// OAEP parameters on an encrypt or decrypt context: SHA-256, MGF1-SHA-256, our label.
Status set_oaep(EVP_PKEY_CTX* ctx) {
  // The label is handed over (OpenSSL frees it), so it is a copy.
  void* label = OPENSSL_memdup(kOaepLabel, sizeof(kOaepLabel) - 1);
  if (!label || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, sizeof(kOaepLabel) - 1) != 1) {
    OPENSSL_free(label);
    return ossl_error("RSA-OAEP parameters");
  }
  return Status::Ok();
}

}  // namespace

struct RecoveryPublicKey::Impl {
  ossl::PkeyPtr pkey;
};
struct RecoveryPrivateKey::Impl {
  ossl::PkeyPtr pkey;
};

RecoveryPublicKey::RecoveryPublicKey(std::unique_ptr<Impl> impl, std::string fingerprint, std::string pem)
    : impl_(std::move(impl)), fingerprint_(std::move(fingerprint)), pem_(std::move(pem)) {}
RecoveryPublicKey::RecoveryPublicKey(RecoveryPublicKey&&) noexcept = default;
RecoveryPublicKey& RecoveryPublicKey::operator=(RecoveryPublicKey&&) noexcept = default;
RecoveryPublicKey::~RecoveryPublicKey() = default;

Result<RecoveryPublicKey> RecoveryPublicKey::from_pem(std::string_view pem) {
  MOSS_ASSIGN_OR_RETURN(ossl::PkeyPtr pkey,
                        ossl::read_public_key_pem(pem, kMaxPemBytes, "recovery public key"));
  MOSS_RETURN_IF_ERROR(check_rsa(pkey.get()));
  MOSS_ASSIGN_OR_RETURN(std::string fp, fingerprint_of(pkey.get()));
  auto impl = std::make_unique<Impl>();
  impl->pkey = std::move(pkey);
  return RecoveryPublicKey(std::move(impl), std::move(fp), std::string(pem));
}

Result<RecoveryPublicKey> RecoveryPublicKey::load(const std::filesystem::path& path) {
  MOSS_ASSIGN_OR_RETURN(std::string text, read_text_file(path, kMaxPemBytes));
  auto key = from_pem(text);
  if (!key.ok()) return key.status().with_context(path.string());
  return key;
}

Result<std::vector<uint8_t>> RecoveryPublicKey::seal(std::span<const uint8_t> secret) const {
  ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, impl_->pkey.get(), nullptr));
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1) return ossl_error("RSA-OAEP encrypt");
  MOSS_RETURN_IF_ERROR(set_oaep(ctx.get()));
  size_t len = 0;
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &len, secret.data(), secret.size()) != 1) {
    return ossl_error("RSA-OAEP encrypt");
  }
  std::vector<uint8_t> out(len);
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &len, secret.data(), secret.size()) != 1) {
    return ossl_error("RSA-OAEP encrypt");
  }
  out.resize(len);
  return out;
}

RecoveryPrivateKey::RecoveryPrivateKey(std::unique_ptr<Impl> impl, std::string fingerprint)
    : impl_(std::move(impl)), fingerprint_(std::move(fingerprint)) {}
RecoveryPrivateKey::RecoveryPrivateKey(RecoveryPrivateKey&&) noexcept = default;
RecoveryPrivateKey& RecoveryPrivateKey::operator=(RecoveryPrivateKey&&) noexcept = default;
RecoveryPrivateKey::~RecoveryPrivateKey() = default;

Result<RecoveryPrivateKey> RecoveryPrivateKey::generate(int bits) {
  if (bits < kMinRecoveryKeyBits) {
    return invalid_argument("recovery-key-weak: at least {} bits, not {}", kMinRecoveryKeyBits, bits);
  }
  EVP_PKEY* raw = EVP_RSA_gen(static_cast<unsigned>(bits));
  if (!raw) return ossl_error("RSA key generation");
  ossl::PkeyPtr pkey(raw);
  MOSS_ASSIGN_OR_RETURN(std::string fp, fingerprint_of(pkey.get()));
  auto impl = std::make_unique<Impl>();
  impl->pkey = std::move(pkey);
  return RecoveryPrivateKey(std::move(impl), std::move(fp));
}

Result<RecoveryPrivateKey> RecoveryPrivateKey::from_pem(std::span<const uint8_t> pem) {
  MOSS_ASSIGN_OR_RETURN(ossl::PkeyPtr pkey,
                        ossl::read_private_key_pem(pem, kMaxPemBytes, "recovery private key"));
  MOSS_RETURN_IF_ERROR(check_rsa(pkey.get()));
  MOSS_ASSIGN_OR_RETURN(std::string fp, fingerprint_of(pkey.get()));
  auto impl = std::make_unique<Impl>();
  impl->pkey = std::move(pkey);
  return RecoveryPrivateKey(std::move(impl), std::move(fp));
}

Result<RecoveryPrivateKey> RecoveryPrivateKey::load(const std::filesystem::path& path) {
  MOSS_ASSIGN_OR_RETURN(SecretBytes pem, read_secret_file(path, kMaxPemBytes));
  auto key = from_pem(pem.span());
  if (!key.ok()) return key.status().with_context(path.string());
  return key;
}

Result<SecretBytes> RecoveryPrivateKey::open(std::span<const uint8_t> sealed) const {
  auto refused = [] {
    ossl_clear();
    return unauthenticated("recovery-open-failed: the export was not sealed to this recovery key "
                           "(or was altered)");
  };
  ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, impl_->pkey.get(), nullptr));
  if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1) return ossl_error("RSA-OAEP decrypt");
  MOSS_RETURN_IF_ERROR(set_oaep(ctx.get()));
  size_t len = 0;
  if (EVP_PKEY_decrypt(ctx.get(), nullptr, &len, sealed.data(), sealed.size()) != 1) return refused();
  SecretBytes out(len);
  if (EVP_PKEY_decrypt(ctx.get(), out.data(), &len, sealed.data(), sealed.size()) != 1) return refused();
  SecretBytes exact(out.span().first(len));
  return exact;
}

Result<SecretBytes> RecoveryPrivateKey::private_pem() const {
  return ossl::private_key_pem(impl_->pkey.get(), "writing recovery private key PEM");
}

Result<std::string> RecoveryPrivateKey::public_pem() const {
  return ossl::public_key_pem(impl_->pkey.get(), "writing recovery public key PEM");
}

}  // namespace moss::crypto
