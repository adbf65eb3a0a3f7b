#include "crypto/keyservice_state.h"

#include "common/encoding.h"
#include "crypto/identity.h"
#include "crypto/signed_request.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>


namespace moss::crypto {

namespace {

Status forked(std::string_view url, std::string_view why) {
  return failed_precondition(
      "keyservice-forked: the KeyService at {} {}: its state forked from the one seen before (an "
      "older copy put back and written to). Refusing it",
      url, why);
}

std::optional<std::array<uint8_t, 32>> hash_from_hex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  auto raw = hex_decode(hex, 32);
  if (!raw.ok() || raw->size() != 32) return std::nullopt;
  std::array<uint8_t, 32> out{};
  std::copy(raw->begin(), raw->end(), out.begin());
  return out;
}

}  // namespace

std::string audit_head_header(int64_t seq, std::span<const uint8_t, 32> hash) {
  return fmt::format("{} {}", seq, hex_encode(hash));
}

std::optional<KeyServiceState> parse_keyservice_state(std::optional<std::string_view> version_header,
                                                      std::optional<std::string_view> head_header) {
  KeyServiceState s;
  s.version = parse_state_version(version_header);
  if (s.version < 0 || !head_header) return std::nullopt;
  size_t space = head_header->find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  s.audit_seq = parse_state_version(head_header->substr(0, space));  // the same integer syntax
  auto hash = hash_from_hex(head_header->substr(space + 1));
  if (s.audit_seq < 0 || !hash || hex_encode(*hash) != head_header->substr(space + 1)) {
    return std::nullopt;  // lowercase only: one spelling per head
  }
  s.audit_hash = *hash;
  return s;
}

Result<StateJudgement> judge_keyservice_state(std::string_view url, const SeenKeyServiceState& seen,
                                              const KeyServiceState& answered) {
  if (answered.version < seen.version) {
    return failed_precondition(
        "keyservice-rollback: the KeyService at {} answered with state version {}, older than "
        "version {} seen before: its state was rolled back (an older copy put back). Refusing it",
        url, answered.version, seen.version);
  }
  if (seen.audit_seq < 0) return StateJudgement::kFresh;  // nothing to compare the head with yet
  if (answered.audit_seq == seen.audit_seq && answered.audit_hash == seen.audit_hash) {
    return StateJudgement::kFresh;
  }
  if (answered.audit_seq <= seen.audit_seq) {
    return forked(url, fmt::format("shows audit head {} at state version {}, not the head {} seen "
                                   "at version {}",
                                   answered.audit_seq, answered.version, seen.audit_seq, seen.version));
  }
  return StateJudgement::kNeedsProof;
}

SeenKeyServiceState remember_fresh(const SeenKeyServiceState& seen, const KeyServiceState& answered) {
  SeenKeyServiceState out = seen;
  out.version = std::max(seen.version, answered.version);
  out.audit_seq = answered.audit_seq;
  out.audit_hash = answered.audit_hash;
  return out;
}

std::string audit_proof_target(const SeenKeyServiceState& seen) {
  return fmt::format("{}?at={}", kAuditHeadPath, seen.audit_seq);
}

std::string audit_proof_signing_message(int64_t seq, std::string_view hash_hex, int64_t state_version,
                                        int64_t at, std::string_view at_hash_hex) {
  return fmt::format("moss-audit-head-at-v1\n{}\n{}\n{}\n{}\n{}", seq, hash_hex, state_version, at,
                     at_hash_hex);
}

Result<SeenKeyServiceState> verify_audit_proof(std::string_view url, const SeenKeyServiceState& seen,
                                               const KeyServiceState& answered,
                                               std::string_view proof_body) {
  auto bad = [&] {
    return data_loss("audit-head-signature-invalid: the KeyService at {} sent a malformed or "
                     "wrongly signed audit head proof", url);
  };
  auto j = nlohmann::json::parse(proof_body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return bad();
  for (const char* f : {"seq", "state_version", "at"}) {
    if (!j.contains(f) || !j[f].is_number_integer() || j[f].get<int64_t>() < 0) return bad();
  }
  for (const char* f : {"hash", "at_hash", "keyservice_key", "signature"}) {
    if (!j.contains(f) || !j[f].is_string()) return bad();
  }
  const std::string hash_hex = j["hash"].get<std::string>();
  const std::string at_hash_hex = j["at_hash"].get<std::string>();
  const std::string key_b64 = j["keyservice_key"].get<std::string>();
  auto hash = hash_from_hex(hash_hex);
  auto at_hash = hash_from_hex(at_hash_hex);
  auto raw = base64_decode(key_b64, kEd25519PublicKeySize);
  auto sig = base64_decode(j["signature"].get<std::string>(), kEd25519SignatureSize);
  if (!hash || !at_hash || !raw.ok() || !sig.ok()) return bad();
  auto key = PublicKey::from_raw(*raw);
  KeyServiceState proven{j["state_version"].get<int64_t>(), j["seq"].get<int64_t>(), *hash};
  const int64_t at = j["at"].get<int64_t>();
  std::string message =
      audit_proof_signing_message(proven.audit_seq, hash_hex, proven.version, at, at_hash_hex);
  if (!key.ok() || !key->verify(as_bytes(message), *sig).ok()) return bad();
  // The state identity is the same for every copy of one state; another one is another state.
  if (!seen.keyservice_key.empty() && seen.keyservice_key != key_b64) {
    return forked(url, "signed its audit head with another state identity");
  }
  if (at != seen.audit_seq) return bad();  // not the question asked
  if (*at_hash != seen.audit_hash) {
    return forked(url, fmt::format("has another audit event {} than the one seen before", at));
  }
  // The proof comes after the answer it vouches for, from the same KeyService.
  if (proven.version < answered.version || proven.audit_seq < answered.audit_seq) {
    return forked(url, fmt::format("proved audit head {} at version {}, older than its answer "
                                   "(head {} at version {})",
                                   proven.audit_seq, proven.version, answered.audit_seq,
                                   answered.version));
  }
  SeenKeyServiceState out = remember_fresh(seen, proven);
  out.keyservice_key = key_b64;
  return out;
}

}  // namespace moss::crypto
