// Names of contract C3 (docs/worker-api.md) that the worker and its clients (`moss infer`,
// benches) must agree on. Header-only, so a client includes it without linking the worker.
#pragma once

namespace moss::worker {

// Headers of a 200 answer to a binary request (the body is the binary response envelope).
inline constexpr char kRunHeader[] = "Moss-Run";             // cold | switch | warm
inline constexpr char kTimingHeader[] = "Moss-Timing-Ms";    // the timing_ms object, JSON text
inline constexpr char kInstanceHeader[] = "Moss-Instance";   // the instance status object, JSON text
// Added by FnPacker to a binary answer: its routing annotation (the JSON result's "packer").
inline constexpr char kPackerHeader[] = "Moss-Packer";

}  // namespace moss::worker
