#include "client/stack_lock.h"

#include "client/stack_state.h"
#include "common/file_util.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace moss::client {
namespace fs = std::filesystem;

Result<StackLock> StackLock::acquire(const fs::path& state_dir) {
  const fs::path path = stack_lock_file(state_dir);
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return internal_error("cannot open {}: {}", path.string(), std::strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    std::string pid = "?";
    if (auto text = read_text_file(stack_pid_file(state_dir), 64); text.ok()) pid = *text;
    while (!pid.empty() && pid.back() == '\n') pid.pop_back();
    return already_exists(
        "a stack is already running in {} (supervisor pid {}); stop it with `moss down "
        "--state-dir {}`",
        state_dir.string(), pid, state_dir.string());
  }
  return StackLock(fd);
}

StackLock::~StackLock() {
  if (fd_ >= 0) close(fd_);
}

bool stack_lock_is_held(const fs::path& state_dir) {
  const int fd = open(stack_lock_file(state_dir).c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  const bool held = flock(fd, LOCK_EX | LOCK_NB) != 0;
  close(fd);
  return held;
}

}  // namespace moss::client
