// Component loggers (style convention 5), on spdlog.
//
// Each part logs through its own named logger (`log::get("engine")`), so an operator can raise or
// lower one component. Messages are key=value pairs: `log::get("worker")->info("run req={} ms={}",
// id, ms)`. Log timings, counts and ids, never payloads or key material. Thread-safe.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

namespace moss::log {

// Returns the logger for a component, creating it (stderr sink, shared level) on first use.
std::shared_ptr<spdlog::logger> get(std::string_view component);

// Sets the level of every component logger: trace, debug, info, warn, error, off.
// Returns false on an unknown level name.
bool set_level(std::string_view level);

}  // namespace moss::log
