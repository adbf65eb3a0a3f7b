// Tests for src/common/loopback_port.cc: a free port can be bound, and "accepts" tells a listening
// port from a closed one.
#include "common/loopback_port.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace moss {
namespace {

// Listens on 127.0.0.1:`port`; returns the socket (-1 on failure).
int listen_on(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 4) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST(LoopbackPortTest, AFreePortCanBeBoundAndAcceptsOnlyWhileListened) {
  auto port = free_loopback_port();
  ASSERT_TRUE(port.ok()) << port.status().to_string();
  EXPECT_GT(*port, 0);
  EXPECT_FALSE(loopback_port_accepts(*port));
  const int fd = listen_on(*port);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(loopback_port_accepts(*port));
  ::close(fd);
  EXPECT_FALSE(loopback_port_accepts(*port));
}

TEST(LoopbackPortTest, SuccessiveCallsGiveUsablePorts) {
  for (int i = 0; i < 5; ++i) {
    auto port = free_loopback_port();
    ASSERT_TRUE(port.ok());
    const int fd = listen_on(*port);
    EXPECT_GE(fd, 0) << "port " << *port;
    if (fd >= 0) ::close(fd);
  }
}

}  // namespace
}  // namespace moss
