// Tests for src/common/service_main.cc and host_port.cc: what every service's main() shares.
#include "common/host_port.h"
#include "common/service_main.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

namespace moss {
namespace {

TEST(StopSignalsTest, TakesAStopSignalSynchronously) {
  sigset_t before;
  pthread_sigmask(SIG_SETMASK, nullptr, &before);
  {
    StopSignals stop;
    EXPECT_EQ(stop.pending(), std::nullopt);
    ASSERT_EQ(::raise(SIGTERM), 0);  // blocked: stays pending instead of ending the test
    EXPECT_EQ(stop.pending(), SIGTERM);
    EXPECT_EQ(stop.pending(), std::nullopt);  // taken once
    ASSERT_EQ(::raise(SIGINT), 0);
    EXPECT_EQ(stop.wait(), SIGINT);
  }
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

TEST(ServiceMainTest, ExitWithErrorReturnsFailure) {
  testing::internal::CaptureStderr();
  EXPECT_EQ(exit_with_error("moss-test", invalid_argument("bad flag")), 1);
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "moss-test: error: invalid-argument: bad flag\n");
}

TEST(HostPortTest, ParsesHostAndPortAsValues) {
  auto a = parse_host_port("127.0.0.1:8088");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8088);
  auto v6 = parse_host_port("[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "[::1]");
  EXPECT_EQ(v6->port, 0);
  EXPECT_EQ(parse_host_port(":65535")->port, 65535);
  for (const char* bad : {"localhost", "h:", "h:65536", "h:-1", "h:80x", "h: 80", "h:99999999999"}) {
    auto r = parse_host_port(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace moss
