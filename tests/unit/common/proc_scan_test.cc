// Tests for src/common/proc_scan.cc against this process and real children: who listens on a
// port, process groups, and finding a group's members by an environment entry.
#include "common/loopback_port.h"
#include "common/proc_scan.h"
#include "common/subprocess.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace moss {
namespace {
using namespace std::chrono_literals;

TEST(ProcScanTest, TellsWhichProcessListensOnALoopbackPort) {
  auto port = free_loopback_port();
  ASSERT_TRUE(port.ok());
  EXPECT_FALSE(process_listens_on_loopback(::getpid(), *port));
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(*port);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  EXPECT_TRUE(process_listens_on_loopback(::getpid(), *port));
  EXPECT_FALSE(process_listens_on_loopback(::getppid(), *port));  // someone else's port
  ::close(fd);
}

TEST(ProcScanTest, ReadsProcessGroups) {
  EXPECT_EQ(process_group_of(::getpid()), ::getpgrp());
  EXPECT_EQ(process_group_of(0x3fffffff), std::nullopt);  // above pid_max: never a process
  auto text = read_proc_file("/proc/self/stat", 16);
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(text->size(), 16u);  // bounded
  EXPECT_EQ(read_proc_file("/proc/self/no-such-file", 16), std::nullopt);
}

TEST(ProcScanTest, FindsGroupMembersByEnvironmentEntry) {
  SubprocessSpec spec;
  spec.name = "marked";
  spec.argv = {"/bin/sh", "-c", "exec sleep 30"};
  spec.env = {{"MOSS_PROC_SCAN_TEST", "here"}};
  spec.tie = ParentTie::kGroupDiesWithParent;
  auto child = Subprocess::spawn(spec);
  ASSERT_TRUE(child.ok());
  const pid_t pid = (*child)->pid();
  std::vector<pid_t> found;
  for (int i = 0; i < 200 && found.empty(); ++i) {  // until the exec has happened
    found = processes_in_group_with_env(pid, "MOSS_PROC_SCAN_TEST=here");
    if (found.empty()) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(found, std::vector<pid_t>{pid});
  EXPECT_TRUE(processes_in_group_with_env(pid, "MOSS_PROC_SCAN_TEST=elsewhere").empty());
  EXPECT_TRUE(processes_in_group_with_env(pid, "MOSS_PROC_SCAN_TEST").empty());  // whole entry
  EXPECT_TRUE(processes_in_group_with_env(::getpgrp(), "MOSS_PROC_SCAN_TEST=here").empty());
}

}  // namespace
}  // namespace moss
