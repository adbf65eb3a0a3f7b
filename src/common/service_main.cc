#include "common/service_main.h"

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

int exit_with_error(std::string_view program, const Status& status) {
  std::fprintf(stderr, "%.*s: error: %s\n", static_cast<int>(program.size()), program.data(),
               status.to_string().c_str());
  return 1;
}

}  // namespace moss
