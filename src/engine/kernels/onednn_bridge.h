// Glue between the registry and the oneDNN kernels in kernels/onednn/ (owned by engine-kernels):
// builds a oneDNN kernel for a node once shapes are bound, with constant weights packed once.
#pragma once

#include "engine/kernels/kernel.h"

#include <string>

namespace moss::engine {

// The prepare function for an operator, or nullptr when oneDNN does not serve it.
PrepareFn onednn_prepare_for(const std::string& op_type);

// Disables oneDNN (MOSS_ENGINE_REFERENCE_ONLY=1 in the environment): reference kernels only,
// for comparison runs.
bool onednn_disabled();

}  // namespace moss::engine
