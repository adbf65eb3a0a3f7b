#include "common/service_main.h"

#include "common/logging.h"

#include <pthread.h>

#include <cstdio>
#include <ctime>

namespace moss {

StopSignals::StopSignals() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
}

int StopSignals::wait() {
  int sig = 0;
  while (sigwait(&set_, &sig) != 0) {
  }
  return sig;
}

std::optional<int> StopSignals::pending() {
  const timespec now{0, 0};
  const int sig = sigtimedwait(&set_, nullptr, &now);
  if (sig > 0) return sig;
  return std::nullopt;
}

Result<ConfigOutcome> load_service_config(const ConfigCommandLine& command_line, Config& config) {
  MOSS_RETURN_IF_ERROR(command_line.load(config));
  if (command_line.print_requested()) {
    std::printf("%s", config.dump().c_str());
    return ConfigOutcome::kPrinted;
  }
  MOSS_RETURN_IF_ERROR(config.validate());
  const std::string key = config.scope() + ".log-level";
  MOSS_ASSIGN_OR_RETURN(std::string level, config.get_string(key));
  if (!log::set_level(level)) {
    return invalid_argument("setting {}: {}: '{}' is not trace, debug, info, warn, error or off", key,
                            *config.source_of(key), level);
  }
  return ConfigOutcome::kServe;
}

int exit_with_error(std::string_view program, const Status& status) {
  std::fprintf(stderr, "%.*s: error: %s\n", static_cast<int>(program.size()), program.data(),
               status.to_string().c_str());
  return 1;
}

}  // namespace moss
