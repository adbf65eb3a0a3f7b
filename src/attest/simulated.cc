#include "attest/simulated.h"

#include "common/file_util.h"
#include "common/secret_bytes.h"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <cstring>

namespace moss::attest {
namespace {

constexpr std::string_view kSignDomain = "moss simulated evidence v1";
constexpr std::string_view kMeasureDomain = "moss-sim-measurement-v1";
constexpr size_t kMaxBinaryBytes = size_t{2} << 30;
constexpr size_t kFixedSize = 8 + 2 + 32 + 64 + 2 + 32 + 64;

std::vector<uint8_t> signed_message(std::span<const uint8_t> body) {
  std::vector<uint8_t> msg(kSignDomain.begin(), kSignDomain.end());
  msg.push_back(0);
  msg.insert(msg.end(), body.begin(), body.end());
  return msg;
}

Result<std::shared_ptr<EVP_PKEY>> key_from_seed(const SecretBytes& seed) {
  if (seed.size() != 32) return invalid_argument("simulated platform key must be 32 bytes");
  EVP_PKEY* key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), 32);
  if (!key) return internal_error("Ed25519 key: {}", ossl::last_error());
  return std::shared_ptr<EVP_PKEY>(key, EVP_PKEY_free);
}

Result<SecretBytes> read_seed(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return not_found("no simulated platform key at {}", path.string());
  if (st.st_mode & 077)
    return permission_denied("simulated platform key {} is readable by others (mode {:o}); chmod 600",
                             path.string(), st.st_mode & 0777);
  return read_secret_file(path, 32);
}

}  // namespace

Result<std::array<uint8_t, 32>> simulated_measurement(const std::filesystem::path& binary,
                                                      std::string_view identity) {
  MOSS_ASSIGN_OR_RETURN(auto bytes, read_file(binary, kMaxBinaryBytes));
  auto binary_hash = ossl::sha256(bytes);
  std::vector<uint8_t> msg(kMeasureDomain.begin(), kMeasureDomain.end());
  msg.push_back(0);
  msg.insert(msg.end(), binary_hash.begin(), binary_hash.end());
  msg.insert(msg.end(), identity.begin(), identity.end());
  return ossl::sha256(msg);
}

Result<SimPlatformKey> SimPlatformKey::load_or_create(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) {
    SecretBytes seed(32);
    if (RAND_bytes(seed.data(), 32) != 1) return internal_error("RAND_bytes failed");
    if (path.has_parent_path()) {
      std::error_code ec;
      std::filesystem::create_directories(path.parent_path(), ec);
    }
    MOSS_RETURN_IF_ERROR(write_file(path, seed.span(), 0600));
  }
  MOSS_ASSIGN_OR_RETURN(SecretBytes seed, read_seed(path));
  SimPlatformKey k;
  MOSS_ASSIGN_OR_RETURN(k.key_, key_from_seed(seed));
  size_t len = 32;
  if (EVP_PKEY_get_raw_public_key(k.key_.get(), k.public_key_.data(), &len) != 1 || len != 32)
    return internal_error("Ed25519 public key: {}", ossl::last_error());
  return k;
}

Result<SimPublicKey> SimPlatformKey::load_public_key(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) return not_found("no simulated platform key at {}", path.string());
  MOSS_ASSIGN_OR_RETURN(SimPlatformKey k, load_or_create(path));
  return k.public_key();
}

Result<std::vector<uint8_t>> SimPlatformKey::sign_evidence(const std::array<uint8_t, 32>& measurement,
                                                           std::span<const uint8_t, 64> report_data,
                                                           std::string_view identity) const {
  if (identity.size() > kMaxSimIdentity)
    return invalid_argument("simulated identity longer than {} bytes", kMaxSimIdentity);
  std::vector<uint8_t> out(kSimEvidenceMagic.begin(), kSimEvidenceMagic.end());
  out.push_back(1);
  out.push_back(0);
  out.insert(out.end(), measurement.begin(), measurement.end());
  out.insert(out.end(), report_data.begin(), report_data.end());
  out.push_back(static_cast<uint8_t>(identity.size()));
  out.push_back(static_cast<uint8_t>(identity.size() >> 8));
  out.insert(out.end(), identity.begin(), identity.end());
  out.insert(out.end(), public_key_.begin(), public_key_.end());
  auto msg = signed_message(out);
  std::array<uint8_t, 64> sig{};
  size_t sig_len = sig.size();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key_.get()) == 1 &&
            EVP_DigestSign(ctx, sig.data(), &sig_len, msg.data(), msg.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok || sig_len != 64) return internal_error("Ed25519 sign: {}", ossl::last_error());
  out.insert(out.end(), sig.begin(), sig.end());
  return out;
}

bool looks_like_simulated_evidence(std::span<const uint8_t> bytes) {
  return bytes.size() >= kSimEvidenceMagic.size() &&
         std::memcmp(bytes.data(), kSimEvidenceMagic.data(), kSimEvidenceMagic.size()) == 0;
}

Result<Claims> verify_simulated_evidence(std::span<const uint8_t> ev, const SimPublicKey& platform_key,
                                         bool allow, std::time_t at) {
  if (!allow)
    return permission_denied("simulated: simulated evidence refused (not allowed by configuration)");
  if (!looks_like_simulated_evidence(ev) || ev.size() < kFixedSize)
    return invalid_argument("simulated: evidence too short or wrong magic");
  if (ev[8] != 1 || ev[9] != 0) return unimplemented("simulated: evidence version {} unknown", ev[8]);
  size_t id_len = ev[106] | ev[107] << 8;
  if (id_len > kMaxSimIdentity || ev.size() != kFixedSize + id_len)
    return invalid_argument("simulated: evidence size does not match its identity length");
  auto key = ev.subspan(108 + id_len, 32);
  auto sig = ev.subspan(140 + id_len, 64);
  if (!std::equal(key.begin(), key.end(), platform_key.begin()))
    return unauthenticated("simulated: signed by platform key {}, expected {}", ossl::to_hex(key),
                           ossl::to_hex(platform_key));
  EVP_PKEY* pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, platform_key.data(), 32);
  if (!pk) return internal_error("Ed25519 public key: {}", ossl::last_error());
  auto msg = signed_message(ev.subspan(0, 140 + id_len));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, pk) == 1 &&
            EVP_DigestVerify(ctx, sig.data(), sig.size(), msg.data(), msg.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pk);
  if (!ok) return unauthenticated("simulated: evidence signature does not verify");
  Claims c;
  c.tee = TeeType::kSimulated;
  c.quote_version = 1;
  c.measurement = ossl::to_hex(ev.subspan(10, 32));
  std::copy(ev.begin() + 42, ev.begin() + 106, c.report_data.begin());
  c.simulated_identity.assign(reinterpret_cast<const char*>(ev.data() + 108), id_len);
  c.tcb_status = std::string(kTcbSimulated);
  c.verified_at = at;
  return c;
}

}  // namespace moss::attest
