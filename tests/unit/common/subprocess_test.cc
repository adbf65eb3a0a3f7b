// Tests for src/common/subprocess.cc with real programs (/bin/sh, sleep): environment merging,
// the log, exit descriptions, graceful-then-forced stop, the process-group sweep, release, and the
// two traps of forking from a threaded program (the parent-death signal bound to the forking
// thread; the signal mask of the forking thread).
#include "common/file_util.h"
#include "common/subprocess.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <thread>

namespace moss {
namespace {
using namespace std::chrono_literals;
using test_support::TempDir;

SubprocessSpec shell(const std::string& script, const std::filesystem::path& log = {}) {
  SubprocessSpec spec;
  spec.name = "test-child";
  spec.argv = {"/bin/sh", "-c", script};
  spec.log_path = log;
  return spec;
}

// Polls until the process has ended (or 10 s); returns the exit description.
std::string wait_exit(Subprocess& p) {
  for (int i = 0; i < 1000; ++i) {
    if (auto e = p.poll_exit()) return *e;
    std::this_thread::sleep_for(10ms);
  }
  return "still running";
}

// Polls until `path` holds a line (the child wrote it), or 10 s.
std::string wait_for_text(const std::filesystem::path& path) {
  for (int i = 0; i < 1000; ++i) {
    auto text = read_text_file(path, 4096);
    if (text.ok() && text->find('\n') != std::string::npos) return *text;
    std::this_thread::sleep_for(10ms);
  }
  return {};
}

// True when `pid` is gone or a zombie (dead, not yet reaped by whoever is its parent now).
bool gone(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    auto paren = all.rfind(')');
    if (!stat || paren == std::string::npos || all.compare(paren + 2, 1, "Z") == 0) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

TEST(SubprocessTest, MergesEnvironmentAndAppendsOutputToTheLog) {
  TempDir dir;
  const auto log = dir.path() / "child.log";
  ::setenv("MOSS_SUBPROCESS_TEST_INHERITED", "kept", 1);
  ::setenv("MOSS_SUBPROCESS_TEST_REPLACED", "old", 1);
  auto spec = shell("echo \"$MOSS_SUBPROCESS_TEST_INHERITED $MOSS_SUBPROCESS_TEST_REPLACED "
                    "$MOSS_SUBPROCESS_TEST_ADDED\"; echo to-stderr >&2",
                    log);
  spec.env = {{"MOSS_SUBPROCESS_TEST_REPLACED", "new"}, {"MOSS_SUBPROCESS_TEST_ADDED", "added"}};
  auto child = Subprocess::spawn(spec);
  ASSERT_TRUE(child.ok()) << child.status().to_string();
  EXPECT_EQ(wait_exit(**child), "exited with code 0");
  EXPECT_EQ(std::filesystem::status(log).permissions(),
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto again = Subprocess::spawn(shell("echo second run", log));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(wait_exit(**again), "exited with code 0");
  auto text = read_text_file(log, 4096);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "kept new added\nto-stderr\nsecond run\n");
  EXPECT_EQ(file_tail_lines(log, 2), "to-stderr\nsecond run");
}

TEST(SubprocessTest, DescribesHowTheProcessEnded) {
  auto code = Subprocess::spawn(shell("exit 3"));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(wait_exit(**code), "exited with code 3");
  auto signalled = Subprocess::spawn(shell("kill -9 $$"));
  ASSERT_TRUE(signalled.ok());
  EXPECT_EQ(wait_exit(**signalled), "killed by signal 9");
  EXPECT_FALSE((*signalled)->alive());
}

TEST(SubprocessTest, RefusesWhatCannotRunBeforeForking) {
  SubprocessSpec missing;
  missing.name = "ghost";
  missing.argv = {"/nonexistent/moss-ghost"};
  auto r = Subprocess::spawn(missing);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.status().message().find("ghost"), std::string::npos);
  missing.argv.clear();
  EXPECT_EQ(Subprocess::spawn(missing).status().code(), ErrorCode::kInvalidArgument);
  auto bad_log = shell("true", "/nonexistent/dir/child.log");
  EXPECT_EQ(Subprocess::spawn(bad_log).status().code(), ErrorCode::kInternal);
}

TEST(SubprocessTest, AnExecFailureInTheChildIsCode127AndALogLine) {
  TempDir dir;
  auto spec = shell("true", dir.path() / "child.log");
  spec.working_dir = dir.path() / "missing";
  auto child = Subprocess::spawn(spec);
  ASSERT_TRUE(child.ok());
  EXPECT_EQ(wait_exit(**child), "exited with code 127");
  EXPECT_NE(file_tail_lines(dir.path() / "child.log", 1).find("test-child: cannot execute"),
            std::string::npos);
}

TEST(SubprocessTest, StopsGracefullyThenByForce) {
  auto polite = Subprocess::spawn(shell("exec sleep 30"));
  ASSERT_TRUE(polite.ok());
  EXPECT_EQ((*polite)->stop(5s), "killed by signal 15");
  EXPECT_EQ((*polite)->stop(5s), "killed by signal 15");  // idempotent

  TempDir dir;
  // The shell says when its trap is set, so SIGTERM never arrives before it is ignored.
  auto stubborn = Subprocess::spawn(
      shell("trap '' TERM; echo ready; while :; do sleep 0.05; done", dir.path() / "log"));
  ASSERT_TRUE(stubborn.ok());
  ASSERT_EQ(wait_for_text(dir.path() / "log"), "ready\n");
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ((*stubborn)->stop(200ms),
            "killed by signal 9 after 200 ms without stopping on SIGTERM");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms);
}

TEST(SubprocessTest, TheDestructorStopsTheProcessUnlessReleased) {
  pid_t pid = 0;
  {
    auto child = Subprocess::spawn(shell("exec sleep 30"));
    ASSERT_TRUE(child.ok());
    pid = (*child)->pid();
  }
  EXPECT_NE(::kill(pid, 0), 0);  // stopped and reaped

  auto detached = shell("exec sleep 30");
  detached.tie = ParentTie::kDetached;
  {
    auto child = Subprocess::spawn(detached);
    ASSERT_TRUE(child.ok());
    pid = (*child)->pid();
    (*child)->release();
  }
  EXPECT_EQ(::kill(pid, 0), 0);
  for (int i = 0; i < 500 && ::getsid(pid) != pid; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(::getsid(pid), pid);  // a session of its own
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

TEST(SubprocessTest, StopSweepsWhatTheChildLeftInItsGroup) {
  TempDir dir;
  auto spec = shell("sleep 30 & echo $!; exec sleep 30", dir.path() / "log");
  spec.tie = ParentTie::kGroupDiesWithParent;
  auto child = Subprocess::spawn(spec);
  ASSERT_TRUE(child.ok());
  const pid_t leader = (*child)->pid();
  EXPECT_EQ(::getpgid(leader), leader);
  const pid_t grandchild = std::stoi(wait_for_text(dir.path() / "log"));
  EXPECT_EQ(::getpgid(grandchild), leader);
  (*child)->stop(2s);
  EXPECT_TRUE(gone(grandchild));
}

// PR_SET_PDEATHSIG is bound to the thread that forked: a child started from a thread that then
// ends must keep running.
TEST(SubprocessTest, OutlivesTheThreadThatStartedIt) {
  std::unique_ptr<Subprocess> child;
  std::thread([&] {
    auto r = Subprocess::spawn(shell("exec sleep 30"));
    ASSERT_TRUE(r.ok());
    child = std::move(*r);
  }).join();
  ASSERT_NE(child, nullptr);
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(child->alive());
  EXPECT_EQ(child->stop(5s), "killed by signal 15");
}

// A supervisor blocks SIGTERM to take it synchronously; its children must not inherit that mask.
TEST(SubprocessTest, TheChildStartsWithAClearSignalMask) {
  TempDir dir;
  std::unique_ptr<Subprocess> child;
  std::thread([&] {
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, nullptr);
    auto r = Subprocess::spawn(shell("grep SigBlk /proc/self/status", dir.path() / "log"));
    ASSERT_TRUE(r.ok());
    child = std::move(*r);
  }).join();
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(wait_exit(*child), "exited with code 0");
  EXPECT_EQ(file_tail_lines(dir.path() / "log", 1), "SigBlk:\t0000000000000000");
}

}  // namespace
}  // namespace moss
