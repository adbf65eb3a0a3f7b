#include "packer/pool_kinds.h"

#include "common/strict_json.h"

namespace moss::packer {

std::string_view backend_kind_name(BackendKind kind) {
  switch (kind) {
    case BackendKind::kLocal:
      return "local";
    case BackendKind::kOpenWhisk:
      return "openwhisk";
  }
  return "?";
}

Result<BackendKind> parse_backend_kind(std::string_view name) {
  for (BackendKind k : {BackendKind::kLocal, BackendKind::kOpenWhisk}) {
    if (name == backend_kind_name(k)) return k;
  }
  // The name is outside input (a pool spec): quoted so that it cannot forge a log line.
  return invalid_argument("unknown backend {} (expected local or openwhisk)", quote_input_name(name));
}

std::string_view policy_kind_name(PolicyKind kind) {
  switch (kind) {
    case PolicyKind::kMoss:
      return "moss";
    case PolicyKind::kOriginal:
      return "original";
    case PolicyKind::kOriginalQueue:
      return "original+queue";
  }
  return "?";
}

Result<PolicyKind> parse_policy_kind(std::string_view name) {
  for (PolicyKind k : {PolicyKind::kMoss, PolicyKind::kOriginal, PolicyKind::kOriginalQueue}) {
    if (name == policy_kind_name(k)) return k;
  }
  return invalid_argument("unknown policy {} (expected moss, original or original+queue)", quote_input_name(name));
}

}  // namespace moss::packer
