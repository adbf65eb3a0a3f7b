#include "store/state_head.h"

#include <cstring>

namespace moss::store {

namespace {

constexpr std::string_view kMetaAad = "moss-state-meta-v1";
constexpr size_t kMetaBytes = 8 + 32 + 8 + 32 + 32;

void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

Result<std::vector<uint8_t>> seal_state_head(const Sealer& sealer, const StateHead& head) {
  if (head.identity_seed.size() != 32) return internal_error("state head without identity seed");
  SecretBytes plain(kMetaBytes);
  uint8_t* p = plain.data();
  put_u64(p, static_cast<uint64_t>(head.version));
  std::memcpy(p + 8, head.digest.data(), 32);
  put_u64(p + 40, static_cast<uint64_t>(head.audit.seq));
  std::memcpy(p + 48, head.audit.hash.data(), 32);
  std::memcpy(p + 80, head.identity_seed.data(), 32);
  return sealer.seal(kMetaAad, plain.span());
}

Result<StateHead> open_state_head(const Sealer& sealer, std::span<const uint8_t> sealed) {
  auto opened = sealer.open(kMetaAad, sealed);
  if (!opened.ok() || opened->size() != kMetaBytes) {
    return state_tampered("state-meta-altered", "the sealed state meta does not open");
  }
  const uint8_t* p = opened->data();
  StateHead head;
  head.version = static_cast<int64_t>(get_u64(p));
  std::memcpy(head.digest.data(), p + 8, 32);
  head.audit.seq = static_cast<int64_t>(get_u64(p + 40));
  std::memcpy(head.audit.hash.data(), p + 48, 32);
  head.identity_seed = SecretBytes(std::span<const uint8_t>(p + 80, 32));
  return head;
}

void xor_into(Mac& acc, const Mac& element) {
  for (size_t i = 0; i < acc.size(); ++i) acc[i] ^= element[i];
}

Status state_tampered(std::string_view reason, std::string message) {
  return refuse(ErrorCode::kDataLoss, reason, message);
}

Status check_row(const StateAuth& auth, std::string_view table, const std::vector<std::string>& row,
                 int64_t row_version, std::span<const uint8_t> mac, int64_t state_version) {
  MOSS_ASSIGN_OR_RETURN(Mac expected, auth.row_mac(table, row, row_version));
  if (mac.size() != expected.size() ||
      std::memcmp(mac.data(), expected.data(), expected.size()) != 0 ||
      row_version > state_version || row_version < 1) {
    return state_tampered("state-row-altered",
                          fmt::format("a row of table {} does not authenticate", table));
  }
  return Status::Ok();
}

}  // namespace moss::store
