// A service binary (moss-keyservice, moss-worker, moss-packer) run as a child process on a free
// loopback port: its first stdout line, "... listening on http(s)://host:port ...", gives the
// URL. Its stderr goes to a log file. Shared by integration tests and benches
// (include "support/service_process.h").
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace moss::test_support {

struct ServiceProcess {
  pid_t pid = -1;
  uint16_t port = 0;        // 0: the process did not report listening (see first_line and the log)
  std::string url;          // e.g. "https://127.0.0.1:41234"
  std::string first_line;

  // Sends `signal` and reaps the process. Idempotent.
  void stop(int signal = SIGTERM) {
    if (pid <= 0) return;
    ::kill(pid, signal);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
  }
};

// Starts argv[0] with `env` added to the inherited environment; returns once it printed its
// first line (or exited).
inline ServiceProcess spawn_service(const std::vector<std::string>& argv,
                                    const std::map<std::string, std::string>& env,
                                    const std::filesystem::path& log) {
  int out[2];
  if (::pipe(out) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) ::dup2(fd, STDERR_FILENO);
    ::close(out[0]);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ServiceProcess s;
  s.pid = pid;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') s.first_line.push_back(c);
  ::close(out[0]);
  const auto at = s.first_line.find("://");
  if (at != std::string::npos) {
    const auto start = s.first_line.rfind(' ', at) + 1;
    s.url = s.first_line.substr(start, s.first_line.find(' ', at) - start);
    s.port = static_cast<uint16_t>(std::atoi(s.url.c_str() + s.url.rfind(':') + 1));
  }
  return s;
}

}  // namespace moss::test_support
