#include "keyservice/request_auth.h"

#include "common/encoding.h"
#include "crypto/hash.h"
#include "crypto/identity.h"
#include "crypto/signed_request.h"

#include <charconv>

namespace moss::keyservice {

namespace {

bool is_lower_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Status missing(std::string_view what) {
  return refuse(ErrorCode::kUnauthenticated, "signature-missing",
                fmt::format("request is not signed ({} missing or malformed)", what));
}

}  // namespace

Result<std::string> RequestAuthenticator::authenticate(
    const net::Request& request, const std::array<uint8_t, 32>* registering_key) const {
  auto principal = request.headers.get(crypto::kHeaderPrincipal);
  auto timestamp = request.headers.get(crypto::kHeaderTimestamp);
  auto nonce = request.headers.get(crypto::kHeaderNonce);
  auto body_hash = request.headers.get(crypto::kHeaderBodySha256);
  auto signature = request.headers.get(crypto::kHeaderSignature);
  if (!principal || !crypto::is_principal_id(*principal)) return missing(crypto::kHeaderPrincipal);
  if (!nonce || nonce->size() != crypto::kRequestNonceChars || !is_lower_hex(*nonce)) {
    return missing(crypto::kHeaderNonce);
  }
  if (!body_hash || body_hash->size() != 64 || !is_lower_hex(*body_hash)) {
    return missing(crypto::kHeaderBodySha256);
  }
  int64_t ts = 0;
  if (!timestamp || timestamp->empty() || timestamp->size() > 12 ||
      std::from_chars(timestamp->data(), timestamp->data() + timestamp->size(), ts).ptr !=
          timestamp->data() + timestamp->size()) {
    return missing(crypto::kHeaderTimestamp);
  }
  if (!signature) return missing(crypto::kHeaderSignature);
  auto sig = base64_decode(*signature, crypto::kEd25519SignatureSize);
  if (!sig.ok() || sig->size() != crypto::kEd25519SignatureSize) return missing(crypto::kHeaderSignature);

  if (hex_encode(sha256(as_bytes(request.body))) != *body_hash) {
    return refuse(ErrorCode::kUnauthenticated, "body-hash-mismatch",
                  "the body does not match its signed hash");
  }
  int64_t now_s = clock_() / 1000;
  if (ts < now_s - window_s_ || ts > now_s + window_s_) {
    return refuse(ErrorCode::kUnauthenticated, "timestamp-out-of-window",
                  fmt::format("request time {} is more than {} s from the server's {}", ts, window_s_,
                              now_s));
  }
  std::string id(*principal);
  std::array<uint8_t, 32> raw{};
  if (registering_key) {
    if (crypto::principal_id_of(*registering_key) != id) {
      return refuse(ErrorCode::kUnauthenticated, "signature-invalid",
                    "principal id is not derived from the registered public key");
    }
    raw = *registering_key;
  } else {
    MOSS_ASSIGN_OR_RETURN(auto stored, state_.principal_key(id));
    if (!stored) {
      return refuse(ErrorCode::kUnauthenticated, "unknown-principal",
                    fmt::format("principal {} is not registered", id));
    }
    raw = *stored;
  }
  MOSS_ASSIGN_OR_RETURN(auto key, crypto::PublicKey::from_raw(raw));
  std::string message = crypto::request_signing_message(request.method, request.target, *body_hash,
                                                        ts, *nonce, id);
  if (!key.verify(as_bytes(message), *sig).ok()) {
    return refuse(ErrorCode::kUnauthenticated, "signature-invalid", "signature does not verify");
  }
  // Nonces are kept for twice the window: any older request fails the time check anyway.
  MOSS_RETURN_IF_ERROR(state_.use_nonce(id, std::string(*nonce), 2 * window_s_ + 60));
  return id;
}

}  // namespace moss::keyservice
