// Every HTTP header name of the inference contracts (docs/worker-api.md C3, docs/packer-api.md
// C4) that the client, FnPacker and the worker must agree on.
#pragma once

namespace moss::protocol {

// Headers of a 200 answer to a binary request (the body is the binary response envelope).
inline constexpr char kRunHeader[] = "Moss-Run";             // cold | switch | warm
inline constexpr char kTimingHeader[] = "Moss-Timing-Ms";    // the timing_ms object, JSON text
inline constexpr char kInstanceHeader[] = "Moss-Instance";   // the instance status object, JSON text
// Added by FnPacker to a binary answer: its routing annotation (the JSON result's "packer").
inline constexpr char kPackerHeader[] = "Moss-Packer";
// A sealed error's category (protocol/error_category.h), on a binary answer.
inline constexpr char kErrorCategoryHeader[] = "Moss-Error-Category";
// With a binary invoke body: how long the request may wait for an instance, in ms (the JSON
// body's "deadline_ms").
inline constexpr char kDeadlineHeader[] = "Moss-Deadline-Ms";

}  // namespace moss::protocol
