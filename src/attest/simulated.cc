#include "attest/simulated.h"
#include "common/encoding.h"
#include "common/sha256.h"

#include "common/file_util.h"
#include "common/secret_bytes.h"

#include "crypto/random.h"

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
  auto binary_hash = sha256(bytes);
  std::vector<uint8_t> msg(kMeasureDomain.begin(), kMeasureDomain.end());
  msg.push_back(0);
  msg.insert(msg.end(), binary_hash.begin(), binary_hash.end());
  msg.insert(msg.end(), identity.begin(), identity.end());
  return sha256(msg);
}

Result<SimPlatformKey> SimPlatformKey::load_or_create(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) {
    MOSS_ASSIGN_OR_RETURN(SecretBytes seed, crypto::random_secret(32));
    if (path.has_parent_path()) {
      std::error_code ec;
      std::filesystem::create_directories(path.parent_path(), ec);
    }
    MOSS_RETURN_IF_ERROR(write_file(path, seed.span(), 0600));
  }
  MOSS_ASSIGN_OR_RETURN(SecretBytes seed, read_seed(path));
  if (seed.size() != 32) return invalid_argument("simulated platform key must be 32 bytes");
  MOSS_ASSIGN_OR_RETURN(crypto::Identity key, crypto::Identity::from_private_raw(seed.span()));
  SimPlatformKey k;
  k.public_key_ = key.public_key().raw();
  k.key_ = std::make_shared<const crypto::Identity>(std::move(key));
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
  MOSS_ASSIGN_OR_RETURN(crypto::Ed25519Signature sig, key_->sign(msg));
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
    return unauthenticated("simulated: signed by platform key {}, expected {}", hex_encode(key),
                           hex_encode(platform_key));
  // The configured platform key is trusted; a key crypto refuses (non-canonical, small order)
  // verifies nothing.
  auto pk = crypto::PublicKey::from_raw(platform_key);
  auto msg = signed_message(ev.subspan(0, 140 + id_len));
  if (!pk.ok() || !pk->verify(msg, sig).ok())
    return unauthenticated("simulated: evidence signature does not verify");
  Claims c;
  c.tee = TeeType::kSimulated;
  c.quote_version = 1;
  c.measurement = hex_encode(ev.subspan(10, 32));
  std::copy(ev.begin() + 42, ev.begin() + 106, c.report_data.begin());
  c.simulated_identity.assign(reinterpret_cast<const char*>(ev.data() + 108), id_len);
  c.tcb_status = std::string(kTcbSimulated);
  c.verified_at = at;
  return c;
}

}  // namespace moss::attest
