// ONNX bytes -> Graph. The model is untrusted: sizes are capped, every reference is checked, and
// external data (a path to a file next to the model) is refused because decrypted models never
// touch disk. Stateless: thread-safe.
#pragma once

#include "common/status.h"
#include "engine/graph/graph.h"

#include <cstdint>
#include <span>

namespace moss::engine {

struct LoadLimits {
  size_t max_model_bytes = (size_t{2} << 30) - 1;  // protobuf parses at most INT_MAX bytes
  size_t max_nodes = 1 << 20;
  size_t max_values = 1 << 22;
};

// Parses and validates (topological order, every input defined, one producer per value).
Result<Graph> load_onnx(std::span<const uint8_t> bytes, const LoadLimits& limits = {});

}  // namespace moss::engine
