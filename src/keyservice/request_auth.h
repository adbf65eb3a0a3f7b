// Authentication of signed requests (docs/keyservice-api.md "Signed requests").
//
// Checks, in order: the five X-Moss-* headers are present and well formed; the body hash header
// matches the body; the timestamp lies within the window of now; the principal is registered (or,
// for registration, its id is derived from the key in the body); the Ed25519 signature verifies;
// then the nonce is recorded durably (refused if used before). The nonce is checked last so that
// nobody without the private key can fill the nonce table.
// Thread-safe (KeyState is).
#pragma once

#include "keyservice/key_state.h"
#include "net/http_message.h"

#include <array>
#include <optional>
#include <span>
#include <string>

namespace moss::keyservice {

class RequestAuthenticator {
 public:
  RequestAuthenticator(KeyState& state, ClockMs clock, int64_t window_s)
      : state_(state), clock_(std::move(clock)), window_s_(window_s) {}

  // The authenticated principal id. With `registering_key`, the principal need not be registered:
  // its id must be derived from that key and the signature made by it (proof of possession).
  Result<std::string> authenticate(const net::Request& request,
                                   const std::array<uint8_t, 32>* registering_key = nullptr) const;

 private:
  KeyState& state_;
  ClockMs clock_;
  int64_t window_s_;
};

}  // namespace moss::keyservice
