#include "crypto/signed_request.h"

#include <fmt/format.h>

#include <charconv>

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

int64_t parse_state_version(std::optional<std::string_view> header) {
  if (!header || header->empty() || header->size() > 19) return -1;
  int64_t v = -1;
  auto [ptr, ec] = std::from_chars(header->data(), header->data() + header->size(), v);
  if (ec != std::errc() || ptr != header->data() + header->size() || v < 0) return -1;
  return v;
}

}  // namespace moss::crypto
