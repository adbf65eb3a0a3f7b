// Parsing untrusted JSON strictly: nlohmann keeps the last of two duplicate keys silently, which
// would let a file say two things at once (two tensors of one name, a config key set twice).
// Stateless: thread-safe.
#pragma once

#include "common/status.h"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace moss {

// Parses `text` as one JSON value (surrounding whitespace allowed). Fails with invalid-argument,
// naming `what`, on a syntax error, invalid UTF-8, a duplicate key in any object, or nesting
// deeper than `max_depth`. Object key order is kept (ordered_json).
Result<nlohmann::ordered_json> parse_json_strict(std::string_view text, std::string_view what,
                                                 int max_depth = 32);

// A key name from untrusted input, fit to quote in an error message that may reach a log line:
// "'name'" when it is 1..64 characters of [A-Za-z0-9_.-], else "(a name of N bytes)", so a name
// carrying quotes, spaces, newlines or control bytes cannot forge or split a log line.
std::string quote_input_name(std::string_view name);

}  // namespace moss
