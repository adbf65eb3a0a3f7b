// The two choices a pool spec names: where its instances run (backend) and how requests are routed
// among them (policy). Enums with one parse and one print each, so a name is checked once, when a
// spec is read, and never compared as text again (docs/packer-api.md, "Create a pool").
// Stateless; thread-safe.
#pragma once

#include "common/status.h"

#include <string_view>

namespace moss::packer {

enum class BackendKind {
  kLocal,      // moss-worker processes on loopback (local_backend.h)
  kOpenWhisk,  // one OpenWhisk action per instance (openwhisk_backend.h)
};

enum class PolicyKind {
  kMoss,           // moss_policy.h
  kOriginal,       // original_policy.h: the original FnPacker rule
  kOriginalQueue,  // the same, queueing instead of starting when every instance is busy
};

// "local", "openwhisk".
std::string_view backend_kind_name(BackendKind kind);
// Invalid-argument naming the accepted names for any other text (which it quotes with
// quote_input_name: it comes from outside).
Result<BackendKind> parse_backend_kind(std::string_view name);

// "moss", "original", "original+queue".
std::string_view policy_kind_name(PolicyKind kind);
Result<PolicyKind> parse_policy_kind(std::string_view name);

}  // namespace moss::packer
