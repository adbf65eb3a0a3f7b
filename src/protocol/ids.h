// Shape rules for the identifiers that the encrypted formats carry and bind as associated data.
// They come from untrusted headers and JSON, so they are bounded and limited to a small
// character set (no spaces, quotes, control bytes or path tricks). Stateless: thread-safe.
#pragma once

#include "common/status.h"

#include <string_view>

namespace moss::protocol {

inline constexpr size_t kMaxModelIdBytes = 256;
inline constexpr size_t kMaxLabelBytes = 128;

// Model ids are `<owner principal id>/<model name>` by convention (the format does not insist
// on the owner part): 1..256 bytes of [A-Za-z0-9._-] in '/'-separated segments, none empty,
// "." or "..". invalid-argument names the rule that failed.
Status validate_model_id(std::string_view id);

// User ids and request ids: 1..128 bytes of [A-Za-z0-9._:-]. `what` names the field in errors.
Status validate_label(std::string_view value, std::string_view what);

}  // namespace moss::protocol
