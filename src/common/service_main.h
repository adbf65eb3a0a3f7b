// What every service's main() does the same way: load its configuration, stop on SIGINT/SIGTERM,
// and report a fatal start-up error as one line on stderr. Kept here so the three mains only wire
// their parts.
#pragma once

#include "common/config_command_line.h"
#include "common/status.h"

#include <signal.h>

#include <optional>
#include <string_view>

namespace moss {

// The stop signals (SIGINT, SIGTERM), taken synchronously. Construct it before any thread starts:
// it blocks them in the calling thread, and threads started later inherit the mask, so only
// wait() or pending() ever receives them (never a default handler that would kill the process
// in the middle of a write). Thread-compatible: one owner, in main().
class StopSignals {
 public:
  StopSignals();
  // Blocks until a stop signal arrives; returns its number.
  int wait();
  // A stop signal that has arrived and not been taken yet, without waiting.
  std::optional<int> pending();

 private:
  sigset_t set_;
};

// After the command line is parsed: loads the layers (file, environment, flags), prints the
// configuration when --print-config was given (kPrinted: the caller exits 0), checks every setting
// and sets the log level from "<scope>.log-level".
enum class ConfigOutcome { kServe, kPrinted };
Result<ConfigOutcome> load_service_config(const ConfigCommandLine& command_line, Config& config);

// Prints "<program>: error: <status>" on stderr and returns the exit code for it (1).
int exit_with_error(std::string_view program, const Status& status);

}  // namespace moss
