// Fork consistency for KeyService clients (docs/keyservice.md "Rollback and forks"): what a client
// remembers of a KeyService's state and how it judges each answer against it. Shared by the `moss`
// client (src/client, persisted per URL) and the worker's key client (in memory); the Python
// client (clients/python/moss_client/state_versions.py) implements the same rules.
//
// Every KeyService answer carries its state version (X-Moss-State-Version) and its audit head
// (X-Moss-Audit-Head: "<seq> <hash hex>"), read together. A client remembers the last pair it
// trusted. An answer is
//   - a rollback ("keyservice-rollback") when its version is lower than the remembered one;
//   - fresh, with no extra round trip, when its audit head is the remembered one (the version may
//     have moved: nonces of signed requests are state changes without an audit event);
//   - forked ("keyservice-forked") when its head is at or before the remembered sequence number
//     but not the remembered head;
//   - otherwise (the log grew) fresh only once the KeyService proves that its chain still holds
//     the remembered value at the remembered sequence: GET /v1/audit/head?at=<seq>, answered with
//     its current head and the chain value at <seq>, both signed by its state identity. A copy put
//     back and then written to cannot produce the remembered value: its chain has forked.
// Stateless functions: thread-safe.
#pragma once

#include "common/status.h"

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace moss::crypto {

inline constexpr char kHeaderAuditHead[] = "X-Moss-Audit-Head";
inline constexpr char kAuditHeadPath[] = "/v1/audit/head";

// A KeyService's state as one answer shows it.
struct KeyServiceState {
  int64_t version = 0;
  int64_t audit_seq = 0;
  std::array<uint8_t, 32> audit_hash{};
};

// What a client remembers of one KeyService (fixed size: one per KeyService).
struct SeenKeyServiceState {
  int64_t version = 0;
  int64_t audit_seq = -1;  // -1: no audit head remembered (nothing seen, or a version-only record)
  std::array<uint8_t, 32> audit_hash{};
  std::string keyservice_key;  // base64 state identity, pinned by the first proof; empty before
};

// The X-Moss-Audit-Head value: "<seq> <64 lowercase hex>".
std::string audit_head_header(int64_t seq, std::span<const uint8_t, 32> hash);
// Both headers of an answer; nullopt when either is absent or malformed.
std::optional<KeyServiceState> parse_keyservice_state(std::optional<std::string_view> version_header,
                                                      std::optional<std::string_view> head_header);

enum class StateJudgement { kFresh, kNeedsProof };
// failed-precondition "keyservice-rollback" or "keyservice-forked" (messages name `url`).
Result<StateJudgement> judge_keyservice_state(std::string_view url, const SeenKeyServiceState& seen,
                                              const KeyServiceState& answered);
// What to remember after an answer judged fresh.
SeenKeyServiceState remember_fresh(const SeenKeyServiceState& seen, const KeyServiceState& answered);

// The proof request for `seen` ("/v1/audit/head?at=<seq>").
std::string audit_proof_target(const SeenKeyServiceState& seen);
// What the KeyService signs for GET /v1/audit/head?at=<at>:
// "moss-audit-head-at-v1\n<seq>\n<hash hex>\n<state version>\n<at>\n<hash hex at>"
std::string audit_proof_signing_message(int64_t seq, std::string_view hash_hex, int64_t state_version,
                                        int64_t at, std::string_view at_hash_hex);
// Checks the proof answer's JSON body for an answer judged kNeedsProof and returns what to
// remember (the proof's signed head). data-loss "audit-head-signature-invalid" when malformed or
// its signature fails; failed-precondition "keyservice-forked" when the chain value at the
// remembered sequence differs, another state identity signed it, or it shows an older state than
// the answer it vouches for.
Result<SeenKeyServiceState> verify_audit_proof(std::string_view url, const SeenKeyServiceState& seen,
                                               const KeyServiceState& answered,
                                               std::string_view proof_body);

}  // namespace moss::crypto
