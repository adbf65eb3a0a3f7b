// What the KeyService releases to a worker for one (model, user) (contract C1), and the interface
// the key cache fetches it through (KeyClient in production; tests may serve keys from memory).
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moss::worker {

struct VersionedKey {
  uint32_t version = 0;
  SecretBytes key;  // 32 bytes
};

struct ReleasedKeys {
  std::string model_id;
  std::string user_id;
  std::string measurement;              // the worker's, as the KeyService saw it
  std::vector<VersionedKey> model_keys;  // every version not retired, newest first
  VersionedKey request_key;
};

// Names the model keys released (versions and key bytes, not retired ones): the model cache's
// generation, so a model loaded under keys that changed (deleted and re-created, retired,
// re-keyed) is never served again. A one-way hash (hex, 32 chars): it reveals no key.
std::string model_key_generation(const ReleasedKeys& keys);

// Thread-safe.
class KeySource {
 public:
  virtual ~KeySource() = default;
  // permission-denied (no grant, no request key), not-found (unknown model or user),
  // unavailable (KeyService unreachable after retries), unauthenticated (attestation failed).
  virtual Result<ReleasedKeys> release(std::string_view model_id, std::string_view user_id) = 0;
};

// Parses and checks a C1 200 body: the ids must echo the request, keys 32 bytes of base64,
// versions positive and distinct, at least one model key.
Result<ReleasedKeys> parse_release_response(std::string_view body, std::string_view model_id,
                                            std::string_view user_id);

}  // namespace moss::worker
