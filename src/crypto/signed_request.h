// Signed HTTP requests (KeyService API, docs/keyservice-api.md "Signed requests"): the canonical
// message a principal signs with its Ed25519 identity, shared by the signing client and the
// verifying server so the two cannot drift apart. Stateless: thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace moss::crypto {

inline constexpr char kHeaderPrincipal[] = "X-Moss-Principal";
inline constexpr char kHeaderTimestamp[] = "X-Moss-Timestamp";
inline constexpr char kHeaderNonce[] = "X-Moss-Nonce";
inline constexpr char kHeaderBodySha256[] = "X-Moss-Body-Sha256";
inline constexpr char kHeaderSignature[] = "X-Moss-Signature";
inline constexpr size_t kRequestNonceChars = 32;  // 16 random bytes, lowercase hex

// "moss-request-v1\n<METHOD>\n<target>\n<body sha256 hex>\n<timestamp>\n<nonce>\n<principal>"
std::string request_signing_message(std::string_view method, std::string_view target,
                                    std::string_view body_sha256_hex, int64_t timestamp,
                                    std::string_view nonce, std::string_view principal_id);

// The KeyService's signed audit head (GET /v1/audit/head), signed by its state identity:
// "moss-audit-head-v1\n<seq>\n<hash hex>\n<state version>"
std::string audit_head_signing_message(int64_t seq, std::string_view hash_hex, int64_t state_version);

// The header every KeyService answer carries: its state version (docs/keyservice-api.md).
inline constexpr char kHeaderStateVersion[] = "X-Moss-State-Version";
// The header's value as a non-negative integer; -1 when absent or malformed.
int64_t parse_state_version(std::optional<std::string_view> header);

}  // namespace moss::crypto
