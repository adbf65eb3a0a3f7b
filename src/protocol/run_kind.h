// How the worker ran a request (docs/worker-api.md): "cold" (first model load of a fresh
// instance), "switch" (loaded on an instance already serving others), "warm" (resident).
#pragma once

#include "common/status.h"

#include <string_view>

namespace moss::protocol {

enum class RunKind { kCold, kSwitch, kWarm };

std::string_view run_kind_name(RunKind kind);
// invalid-argument for anything but the three names.
Result<RunKind> parse_run_kind(std::string_view name);

}  // namespace moss::protocol
