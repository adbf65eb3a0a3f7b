#include "crypto/identity.h"

#include "common/encoding.h"
#include "common/file_util.h"
#include "crypto/hash.h"
#include "crypto/ossl_util.h"

#include <openssl/pem.h>

namespace moss::crypto {

namespace {
// Key files are tiny; anything bigger is not a key file.
constexpr size_t kMaxKeyFileBytes = 16 * 1024;

Result<Ed25519PublicRaw> raw_public_of(EVP_PKEY* pkey) {
  Ed25519PublicRaw raw{};
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(pkey, raw.data(), &len) != 1 || len != raw.size()) {
    return detail::ossl_error("Ed25519 public key");
  }
  return raw;
}
}  // namespace

std::string principal_id_of(std::span<const uint8_t, kEd25519PublicKeySize> raw_public_key) {
  Sha256Digest digest = sha256(raw_public_key);
  return hex_encode(std::span<const uint8_t>(digest.data(), kPrincipalIdChars / 2));
}

bool is_principal_id(std::string_view id) {
  if (id.size() != kPrincipalIdChars) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// ---- PublicKey ----

Result<PublicKey> PublicKey::from_raw(std::span<const uint8_t> raw) {
  if (raw.size() != kEd25519PublicKeySize) {
    return invalid_argument("Ed25519 public key must be 32 bytes, got {}", raw.size());
  }
  // Parse through OpenSSL so that a malformed point is caught here, not at first use.
  detail::PkeyPtr pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size()));
  if (!pkey) {
    detail::ossl_clear();
    return invalid_argument("not a valid Ed25519 public key");
  }
  Ed25519PublicRaw copy{};
  std::copy(raw.begin(), raw.end(), copy.begin());
  return PublicKey(copy);
}

Result<PublicKey> PublicKey::from_pem(std::string_view pem) {
  if (pem.size() > kMaxKeyFileBytes) return invalid_argument("public key PEM too large");
  detail::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return detail::ossl_error("memory BIO");
  detail::PkeyPtr pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) {
    detail::ossl_clear();
    return invalid_argument("not a PEM public key");
  }
  if (EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_ED25519) {
    return invalid_argument("public key is not Ed25519");
  }
  MOSS_ASSIGN_OR_RETURN(Ed25519PublicRaw raw, raw_public_of(pkey.get()));
  return PublicKey(raw);
}

Result<PublicKey> PublicKey::load(const std::filesystem::path& path) {
  MOSS_ASSIGN_OR_RETURN(std::string text, read_text_file(path, kMaxKeyFileBytes));
  auto key = from_pem(text);
  if (!key.ok()) return key.status().with_context(path.string());
  return key;
}

Result<std::string> PublicKey::to_pem() const {
  detail::PkeyPtr pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw_.data(), raw_.size()));
  detail::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!pkey || !bio || PEM_write_bio_PUBKEY(bio.get(), pkey.get()) != 1) {
    return detail::ossl_error("writing public key PEM");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

Status PublicKey::verify(std::span<const uint8_t> message,
                         std::span<const uint8_t> signature) const {
  if (signature.size() != kEd25519SignatureSize) {
    return unauthenticated("Ed25519 signature must be 64 bytes, got {}", signature.size());
  }
  detail::PkeyPtr pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw_.data(), raw_.size()));
  detail::MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!pkey || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) {
    return detail::ossl_error("Ed25519 verify setup");
  }
  if (EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                       message.size()) != 1) {
    detail::ossl_clear();
    return unauthenticated("Ed25519 signature does not verify for principal {}", principal_id());
  }
  return Status::Ok();
}

// ---- Identity ----

struct Identity::Impl {
  detail::PkeyPtr pkey;
};

Identity::Identity(std::unique_ptr<Impl> impl, PublicKey public_key)
    : impl_(std::move(impl)), public_key_(public_key) {}
Identity::Identity(Identity&&) noexcept = default;
Identity& Identity::operator=(Identity&&) noexcept = default;
Identity::~Identity() = default;

Result<Identity> Identity::from_pkey(void* raw_pkey) {
  detail::PkeyPtr pkey(static_cast<EVP_PKEY*>(raw_pkey));
  if (EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_ED25519) {
    return invalid_argument("private key is not Ed25519");
  }
  MOSS_ASSIGN_OR_RETURN(Ed25519PublicRaw raw, raw_public_of(pkey.get()));
  auto impl = std::make_unique<Impl>();
  impl->pkey = std::move(pkey);
  return Identity(std::move(impl), PublicKey(raw));
}

Result<Identity> Identity::generate() {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!pkey) return detail::ossl_error("Ed25519 key generation");
  return from_pkey(pkey);
}

Result<Identity> Identity::from_private_raw(std::span<const uint8_t> seed) {
  if (seed.size() != kEd25519PrivateKeySize) {
    return invalid_argument("Ed25519 private key must be 32 bytes, got {}", seed.size());
  }
  EVP_PKEY* pkey =
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size());
  if (!pkey) return detail::ossl_error("Ed25519 private key");
  return from_pkey(pkey);
}

Result<Identity> Identity::from_pem(std::span<const uint8_t> pem) {
  if (pem.size() > kMaxKeyFileBytes) return invalid_argument("private key PEM too large");
  detail::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return detail::ossl_error("memory BIO");
  // No passphrase callback: an encrypted PEM fails rather than prompting on a terminal.
  static pem_password_cb* const kNoPrompt = [](char*, int, int, void*) { return -1; };
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio.get(), nullptr, kNoPrompt, nullptr);
  if (!pkey) {
    detail::ossl_clear();
    return invalid_argument("not an unencrypted PEM private key");
  }
  return from_pkey(pkey);
}

Result<Identity> Identity::load(const std::filesystem::path& path) {
  MOSS_ASSIGN_OR_RETURN(SecretBytes pem, read_secret_file(path, kMaxKeyFileBytes));
  auto id = from_pem(pem.span());
  if (!id.ok()) return id.status().with_context(path.string());
  return id;
}

Result<Ed25519Signature> Identity::sign(std::span<const uint8_t> message) const {
  detail::MdCtxPtr ctx(EVP_MD_CTX_new());
  Ed25519Signature sig{};
  size_t len = sig.size();
  if (!ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1 ||
      len != sig.size()) {
    return detail::ossl_error("Ed25519 sign");
  }
  return sig;
}

Result<SecretBytes> Identity::private_pem() const {
  // The secure-heap BIO wipes its buffer when freed.
  detail::BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), impl_->pkey.get(), nullptr, nullptr, 0,
                                       nullptr, nullptr) != 1) {
    return detail::ossl_error("writing private key PEM");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return SecretBytes(std::span<const uint8_t>(reinterpret_cast<uint8_t*>(data),
                                              static_cast<size_t>(len)));
}

Result<SecretBytes> Identity::private_raw() const {
  SecretBytes raw(kEd25519PrivateKeySize);
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_private_key(impl_->pkey.get(), raw.data(), &len) != 1 ||
      len != raw.size()) {
    return detail::ossl_error("Ed25519 private key bytes");
  }
  return raw;
}

Status Identity::save_private(const std::filesystem::path& path) const {
  MOSS_ASSIGN_OR_RETURN(SecretBytes pem, private_pem());
  return write_file(path, pem.span(), 0600);
}

}  // namespace moss::crypto
