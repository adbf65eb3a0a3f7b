// Parsing untrusted JSON strictly: nlohmann keeps the last of two duplicate keys silently, which
// would let a file say two things at once (two tensors of one name, a config key set twice).
// Stateless: thread-safe.
#pragma once

#include "common/status.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace moss {

// Parses `text` as one JSON value (surrounding whitespace allowed). Fails with invalid-argument,
// naming `what`, on a syntax error, invalid UTF-8, a duplicate key in any object, or nesting
// deeper than `max_depth`. Object key order is kept (ordered_json).
Result<nlohmann::ordered_json> parse_json_strict(std::string_view text, std::string_view what,
                                                 int max_depth = 32);

// Field readers for untrusted objects (from parse_json_strict). Each fails with invalid-argument
// naming the field, never echoing its value (it may be secret). Callers add where with
// with_context(); the "_or" forms return `fallback` when the field is absent.

// Fails unless `j` is an object whose keys are all in `required` or `optional` and which has every
// key in `required`.
Status check_object_keys(const nlohmann::ordered_json& j,
                         std::initializer_list<std::string_view> required,
                         std::initializer_list<std::string_view> optional = {});

// parse_json_strict, then check_object_keys.
Result<nlohmann::ordered_json> parse_json_object(std::string_view text, std::string_view what,
                                                 std::initializer_list<std::string_view> required,
                                                 std::initializer_list<std::string_view> optional = {},
                                                 int max_depth = 32);

// A string of at most `max_bytes` bytes.
Result<std::string> string_field(const nlohmann::ordered_json& j, std::string_view name,
                                 size_t max_bytes);
Result<std::string> string_field_or(const nlohmann::ordered_json& j, std::string_view name,
                                    size_t max_bytes, std::string fallback);
// A JSON integer (not a float, not a boolean) in [min, max].
Result<int64_t> integer_field(const nlohmann::ordered_json& j, std::string_view name, int64_t min,
                              int64_t max);
Result<int64_t> integer_field_or(const nlohmann::ordered_json& j, std::string_view name,
                                 int64_t min, int64_t max, int64_t fallback);
Result<bool> bool_field(const nlohmann::ordered_json& j, std::string_view name);
Result<bool> bool_field_or(const nlohmann::ordered_json& j, std::string_view name, bool fallback);
// An array of at most `max_items` elements / an object of at most `max_keys` keys; the pointer is
// into `j` and never null.
Result<const nlohmann::ordered_json*> array_field(const nlohmann::ordered_json& j,
                                                  std::string_view name, size_t max_items);
Result<const nlohmann::ordered_json*> object_field(const nlohmann::ordered_json& j,
                                                   std::string_view name, size_t max_keys);

// A key name from untrusted input, fit to quote in an error message that may reach a log line:
// "'name'" when it is 1..64 characters of [A-Za-z0-9_.-], else "(a name of N bytes)", so a name
// carrying quotes, spaces, newlines or control bytes cannot forge or split a log line.
std::string quote_input_name(std::string_view name);

}  // namespace moss
