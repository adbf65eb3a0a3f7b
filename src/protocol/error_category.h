// An opened request that failed is answered with its response envelope sealing the detail
// (docs/worker-api.md, "Errors"); in cleartext only one of these fixed categories: in the JSON
// body's error.category, and for a binary answer in the Moss-Error-Category header.
#pragma once

#include <string>
#include <string_view>

namespace moss::protocol {

inline constexpr char kCategoryBadInput[] = "bad-input";                  // the inputs; HTTP 400
inline constexpr char kCategoryModelUnavailable[] = "model-unavailable";  // load failed; by code
inline constexpr char kCategoryInferenceFailed[] = "inference-failed";    // the engine; HTTP 500
inline constexpr char kCategoryReplayed[] = "replayed";                   // seen before; HTTP 409

// The cleartext message of such an answer: the category, never the detail.
inline std::string sealed_failure_message(std::string_view category) {
  return std::string(category) + ": the request failed; the detail is sealed for the user in the response envelope";
}

}  // namespace moss::protocol
