// A stand-in for moss-keyservice / moss-packer / moss-worker in stack_test: listens where
// `--listen 127.0.0.1:PORT` says, answers every HTTP request with `{}` (201 to a POST, else
// 200), and exits 0 on SIGTERM. Behaviour switches, by the name it was started under and the
// environment:
//   FAKE_PACKER_SPAWN=1            as moss-packer: start a child (a "worker") that outlives it
//   FAKE_KEYSERVICE_EXIT_AFTER_MS  as moss-keyservice: exit with code 3 after that many ms
//   FAKE_IGNORE_TERM=1             ignore SIGTERM (the supervisor must fall back to SIGKILL)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

bool env_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, value) == 0;
}

void answer(int fd) {
  std::string request;
  char buf[4096];
  while (request.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return;
    request.append(buf, static_cast<size_t>(n));
  }
  std::string status = request.rfind("POST ", 0) == 0 ? "201 Created" : "200 OK";
  std::string response = "HTTP/1.1 " + status +
                         "\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                         "Connection: close\r\n\r\n{}";
  (void)!write(fd, response.data(), response.size());
}

}  // namespace

int main(int argc, char** argv) {
  std::string self = argv[0];
  std::string name = self.substr(self.rfind('/') + 1);
  int port = -1;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--listen") == 0) {
      const char* colon = std::strrchr(argv[i + 1], ':');
      if (colon != nullptr) port = std::atoi(colon + 1);
    }
  }
  std::printf("fake %s pid %d port %d\n", name.c_str(), getpid(), port);
  std::fflush(stdout);
  if (port <= 0) return 2;
  if (env_is("FAKE_IGNORE_TERM", "1")) signal(SIGTERM, SIG_IGN);
  if (name == "moss-packer" && env_is("FAKE_PACKER_SPAWN", "1")) {
    if (fork() == 0) {
      signal(SIGTERM, SIG_DFL);
      execl("/bin/sleep", "sleep", "300", static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  if (const char* ms = std::getenv("FAKE_KEYSERVICE_EXIT_AFTER_MS");
      ms != nullptr && name == "moss-keyservice") {
    std::thread([delay = std::atoi(ms)] {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay));
      std::printf("fake keyservice crashing\n");
      std::fflush(stdout);
      _exit(3);
    }).detach();
  }
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listener, 16) != 0) {
    std::perror("fake: bind/listen");
    return 2;
  }
  while (true) {
    int fd = accept(listener, nullptr, nullptr);
    if (fd < 0) continue;
    answer(fd);
    close(fd);
  }
}
