#include "crypto/signed_request.h"

#include <fmt/format.h>

namespace moss::crypto {

std::string request_signing_message(std::string_view method, std::string_view target,
                                    std::string_view body_sha256_hex, int64_t timestamp,
                                    std::string_view nonce, std::string_view principal_id) {
  return fmt::format("moss-request-v1\n{}\n{}\n{}\n{}\n{}\n{}", method, target, body_sha256_hex,
                     timestamp, nonce, principal_id);
}

std::string audit_head_signing_message(int64_t seq, std::string_view hash_hex, int64_t state_version) {
  return fmt::format("moss-audit-head-v1\n{}\n{}\n{}", seq, hash_hex, state_version);
}

}  // namespace moss::crypto
