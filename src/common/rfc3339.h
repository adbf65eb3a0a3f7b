// RFC 3339 UTC times ("2025-07-01T00:00:00Z") <-> Unix seconds, as attestation collateral, claims
// and certificate messages write them. Stateless: thread-safe.
#pragma once

#include "common/status.h"

#include <ctime>
#include <string>
#include <string_view>

namespace moss {

// Accepts fractional seconds (ignored) and the zones "Z", "z" and "+00:00"; any other zone or a
// malformed time is invalid-argument.
Result<std::time_t> parse_rfc3339(std::string_view text);
// "YYYY-MM-DDTHH:MM:SSZ".
std::string format_rfc3339(std::time_t t);

}  // namespace moss
