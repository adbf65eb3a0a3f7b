// Names of contract C3 (docs/worker-api.md) that the worker and its clients (`moss infer`,
// benches) must agree on. Header-only, so a client includes it without linking the worker.
#pragma once

#include <string>
#include <string_view>

namespace moss::worker {

// Headers of a 200 answer to a binary request (the body is the binary response envelope).
inline constexpr char kRunHeader[] = "Moss-Run";             // cold | switch | warm
inline constexpr char kTimingHeader[] = "Moss-Timing-Ms";    // the timing_ms object, JSON text
inline constexpr char kInstanceHeader[] = "Moss-Instance";   // the instance status object, JSON text
// Added by FnPacker to a binary answer: its routing annotation (the JSON result's "packer").
inline constexpr char kPackerHeader[] = "Moss-Packer";

// An opened request that failed is answered with its response envelope sealing the detail
// (docs/worker-api.md, "Errors"); in cleartext only one of these fixed categories: in the JSON
// body's error.category, and for a binary answer in this header.
inline constexpr char kErrorCategoryHeader[] = "Moss-Error-Category";
inline constexpr char kCategoryBadInput[] = "bad-input";                  // the inputs; HTTP 400
inline constexpr char kCategoryModelUnavailable[] = "model-unavailable";  // load failed; by code
inline constexpr char kCategoryInferenceFailed[] = "inference-failed";    // the engine; HTTP 500
inline constexpr char kCategoryReplayed[] = "replayed";                   // seen before; HTTP 409

// The cleartext message of such an answer: the category, never the detail.
inline std::string sealed_failure_message(std::string_view category) {
  return std::string(category) + ": the request failed; the detail is sealed for the user in the response envelope";
}

}  // namespace moss::worker
