#include "crypto/identity.h"

#include "common/encoding.h"
#include "common/file_util.h"
#include "crypto/hash.h"
#include "common/ossl.h"


namespace moss::crypto {

namespace {
// Key files are tiny; anything bigger is not a key file.
constexpr size_t kMaxKeyFileBytes = 16 * 1024;

Result<Ed25519PublicRaw> raw_public_of(EVP_PKEY* pkey) {
  Ed25519PublicRaw raw{};
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(pkey, raw.data(), &len) != 1 || len != raw.size()) {
    return ossl_error("Ed25519 public key");
  }
  return raw;
}
// The y coordinates (sign bit cleared) of the eight points of small order: 0 (order 4, both
// signs), 1 (the identity), p-1 (order 2) and the two order-8 y values (both signs each). With
// canonical encodings enforced, these are all small-order encodings (cf. libsodium's list).
constexpr uint8_t kSmallOrderY[][32] = {
    {0},
    {1},
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
     0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
     0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
};

// L = 2^252 + 27742317777372353535851937790883648493, little-endian.
constexpr uint8_t kGroupOrder[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                     0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};

// Little-endian a < b over 32 bytes.
bool less_than(const uint8_t* a, const uint8_t* b) {
  for (int i = 31; i >= 0; --i) {
    if (a[i] != b[i]) return a[i] < b[i];
  }
  return false;
}

}  // namespace

bool is_strict_ed25519_point(std::span<const uint8_t, 32> encoded) {
  uint8_t y[32];
  std::copy(encoded.begin(), encoded.end(), y);
  y[31] &= 0x7f;
  // Canonical: y < p = 2^255 - 19 (p's little-endian bytes are ed ff .. ff 7f).
  static constexpr uint8_t kP[32] = {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
  if (!less_than(y, kP)) return false;
  // x = 0 has only one encoding: the sign bit set with y = 1 or y = p-1 is not canonical (and
  // those are small-order points anyway).
  for (const auto& small : kSmallOrderY) {
    if (std::equal(y, y + 32, small)) return false;
  }
  return true;
}

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
  if (!is_strict_ed25519_point(std::span<const uint8_t, 32>(raw.data(), 32))) {
    return invalid_argument("Ed25519 public key is non-canonical or of small order");
  }
  // Parse through OpenSSL so that a malformed point is caught here, not at first use.
  ossl::PkeyPtr pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size()));
  if (!pkey) {
    ossl_clear();
    return invalid_argument("not a valid Ed25519 public key");
  }
  Ed25519PublicRaw copy{};
  std::copy(raw.begin(), raw.end(), copy.begin());
  return PublicKey(copy);
}

Result<PublicKey> PublicKey::from_pem(std::string_view pem) {
  MOSS_ASSIGN_OR_RETURN(ossl::PkeyPtr pkey, ossl::read_public_key_pem(pem, kMaxKeyFileBytes, "public key"));
  if (EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_ED25519) {
    return invalid_argument("public key is not Ed25519");
  }
  MOSS_ASSIGN_OR_RETURN(Ed25519PublicRaw raw, raw_public_of(pkey.get()));
  if (!is_strict_ed25519_point(raw)) {
    return invalid_argument("Ed25519 public key is non-canonical or of small order");
  }
  return PublicKey(raw);
}

Result<PublicKey> PublicKey::load(const std::filesystem::path& path) {
  MOSS_ASSIGN_OR_RETURN(std::string text, read_text_file(path, kMaxKeyFileBytes));
  auto key = from_pem(text);
  if (!key.ok()) return key.status().with_context(path.string());
  return key;
}

Result<std::string> PublicKey::to_pem() const {
  ossl::PkeyPtr pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw_.data(), raw_.size()));
  return ossl::public_key_pem(pkey.get(), "writing public key PEM");
}

Status PublicKey::verify(std::span<const uint8_t> message,
                         std::span<const uint8_t> signature) const {
  if (signature.size() != kEd25519SignatureSize) {
    return unauthenticated("Ed25519 signature must be 64 bytes, got {}", signature.size());
  }
  // Strict verification: R a canonical point of large order, S < L, and a strict key (checked
  // again here, since a PublicKey can also come from a PEM file).
  if (!is_strict_ed25519_point(std::span<const uint8_t, 32>(raw_.data(), 32)) ||
      !is_strict_ed25519_point(std::span<const uint8_t, 32>(signature.data(), 32)) ||
      !less_than(signature.data() + 32, kGroupOrder)) {
    return unauthenticated("Ed25519 signature or key is non-canonical or of small order");
  }
  ossl::PkeyPtr pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw_.data(), raw_.size()));
  ossl::MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!pkey || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) {
    return ossl_error("Ed25519 verify setup");
  }
  if (EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                       message.size()) != 1) {
    ossl_clear();
    return unauthenticated("Ed25519 signature does not verify for principal {}", principal_id());
  }
  return Status::Ok();
}

// ---- Identity ----

struct Identity::Impl {
  ossl::PkeyPtr pkey;
};

Identity::Identity(std::unique_ptr<Impl> impl, PublicKey public_key)
    : impl_(std::move(impl)), public_key_(public_key) {}
Identity::Identity(Identity&&) noexcept = default;
Identity& Identity::operator=(Identity&&) noexcept = default;
Identity::~Identity() = default;

Result<Identity> Identity::from_pkey(void* raw_pkey) {
  ossl::PkeyPtr pkey(static_cast<EVP_PKEY*>(raw_pkey));
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
  if (!pkey) return ossl_error("Ed25519 key generation");
  return from_pkey(pkey);
}

Result<Identity> Identity::from_private_raw(std::span<const uint8_t> seed) {
  if (seed.size() != kEd25519PrivateKeySize) {
    return invalid_argument("Ed25519 private key must be 32 bytes, got {}", seed.size());
  }
  EVP_PKEY* pkey =
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size());
  if (!pkey) return ossl_error("Ed25519 private key");
  return from_pkey(pkey);
}

Result<Identity> Identity::from_pem(std::span<const uint8_t> pem) {
  MOSS_ASSIGN_OR_RETURN(ossl::PkeyPtr pkey, ossl::read_private_key_pem(pem, kMaxKeyFileBytes, "private key"));
  return from_pkey(pkey.release());
}

Result<Identity> Identity::load(const std::filesystem::path& path) {
  MOSS_ASSIGN_OR_RETURN(SecretBytes pem, read_secret_file(path, kMaxKeyFileBytes));
  auto id = from_pem(pem.span());
  if (!id.ok()) return id.status().with_context(path.string());
  return id;
}

Result<Ed25519Signature> Identity::sign(std::span<const uint8_t> message) const {
  ossl::MdCtxPtr ctx(EVP_MD_CTX_new());
  Ed25519Signature sig{};
  size_t len = sig.size();
  if (!ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1 ||
      len != sig.size()) {
    return ossl_error("Ed25519 sign");
  }
  return sig;
}

Result<SecretBytes> Identity::private_pem() const {
  return ossl::private_key_pem(impl_->pkey.get(), "writing private key PEM");
}

Result<SecretBytes> Identity::private_raw() const {
  SecretBytes raw(kEd25519PrivateKeySize);
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_private_key(impl_->pkey.get(), raw.data(), &len) != 1 ||
      len != raw.size()) {
    return ossl_error("Ed25519 private key bytes");
  }
  return raw;
}

Status Identity::save_private(const std::filesystem::path& path) const {
  MOSS_ASSIGN_OR_RETURN(SecretBytes pem, private_pem());
  return write_file(path, pem.span(), 0600);
}

}  // namespace moss::crypto
