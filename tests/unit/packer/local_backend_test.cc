#include "packer/local_backend.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "packer_test_util.h"

namespace moss::packer {
namespace {

using nlohmann::json;

LocalBackendOptions stand_in_options() {
  LocalBackendOptions o;
  o.worker_binary = testing::stand_in_worker();
  o.max_concurrency = 4;
  o.memory_budget_mb = 256;
  o.start_timeout = std::chrono::seconds(10);
  return o;
}

std::string request(const std::string& model, double service_ms = 1) {
  return json{{"model_id", model}, {"envelope", testing::costs(service_ms, 20)}}.dump();
}

// The first request on a new instance is a cold run; the next reuses the same process warm.
TEST(LocalBackendTest, ColdStartThenReuse) {
  LocalBackend backend(stand_in_options());
  auto inst = backend.start("i0");
  ASSERT_TRUE(inst.ok()) << inst.status().to_string();
  EXPECT_EQ((*inst)->endpoint().rfind("127.0.0.1:", 0), 0u);
  auto first = (*inst)->invoke(request("o/a"), std::chrono::seconds(5));
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  auto second = (*inst)->invoke(request("o/a"), std::chrono::seconds(5));
  ASSERT_TRUE(second.ok());
  json a = testing::result_json(*first), b = testing::result_json(*second);
  EXPECT_EQ(a["run"], "cold");
  EXPECT_EQ(b["run"], "warm");
  EXPECT_EQ(a["instance"]["instance_id"], b["instance"]["instance_id"]);
  // The pool's concurrency and memory budget reach the worker.
  EXPECT_EQ(b["instance"]["max_concurrency"], 4);
  EXPECT_EQ(b["instance"]["memory_budget_bytes"], 256ull << 20);
}

// A worker started from a thread that then ends keeps running: the parent-death signal that
// stops workers with the packer is tied to the forking thread, so forks happen on one thread
// that lives as long as the packer (a prewarm thread's worker used to get SIGTERM at once).
TEST(LocalBackendTest, WorkerOutlivesTheThreadThatStartedIt) {
  LocalBackend backend(stand_in_options());
  Result<InstancePtr> inst = unavailable("not started");
  std::thread([&] { inst = backend.start("i0"); }).join();
  ASSERT_TRUE(inst.ok()) << inst.status().to_string();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  auto r = (*inst)->invoke(request("o/a"), std::chrono::seconds(5));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(testing::result_json(*r)["run"], "cold");
  EXPECT_EQ((*inst)->restarts(), 0);
}

// A crashed worker is restarted; the request that found it dead never reached it and is served.
TEST(LocalBackendTest, RestartsCrashedInstance) {
  LocalBackend backend(stand_in_options());
  auto inst = backend.start("i0").value_or_die();
  ASSERT_TRUE(inst->invoke(request("o/a"), std::chrono::seconds(5)).ok());
  // The request that crashes the worker was in it: it fails and is not retried.
  auto crashed = inst->invoke(request("test/crash"), std::chrono::seconds(5));
  ASSERT_FALSE(crashed.ok());
  EXPECT_EQ(crashed.status().code(), ErrorCode::kUnavailable);
  auto after = inst->invoke(request("o/a"), std::chrono::seconds(5));
  ASSERT_TRUE(after.ok()) << after.status().to_string();
  EXPECT_EQ(testing::result_json(*after)["run"], "cold");  // a fresh process
  EXPECT_EQ(inst->restarts(), 1);
}

// Worker errors come back as the Status the worker described.
TEST(LocalBackendTest, PassesWorkerErrorsThrough) {
  LocalBackend backend(stand_in_options());
  auto inst = backend.start("i0").value_or_die();
  auto denied = inst->invoke(request("test/deny"), std::chrono::seconds(5));
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(denied.status().message().find("no grant"), std::string::npos);
}

// A missing worker binary is a clear error, not a hang.
TEST(LocalBackendTest, MissingBinaryFails) {
  LocalBackendOptions o = stand_in_options();
  o.worker_binary = "/nonexistent/moss-worker";
  LocalBackend backend(o);
  auto inst = backend.start("i0");
  ASSERT_FALSE(inst.ok());
  EXPECT_EQ(inst.status().code(), ErrorCode::kNotFound);
}

// Stopping an instance ends its process: requests afterwards fail fast.
TEST(LocalBackendTest, StopEndsTheProcess) {
  LocalBackend backend(stand_in_options());
  auto inst = backend.start("i0").value_or_die();
  inst->stop();
  EXPECT_EQ(inst->endpoint(), "stopped");
  EXPECT_FALSE(inst->invoke(request("o/a"), std::chrono::seconds(1)).ok());
}

// The real moss-worker (when built) starts under the local backend and reports C3 status.
TEST(LocalBackendTest, StartsTheRealWorker) {
  const char* bin_dir = std::getenv("MOSS_BIN_DIR");
  std::filesystem::path worker = bin_dir ? std::filesystem::path(bin_dir) / "moss-worker" : "";
  if (worker.empty() || !std::filesystem::exists(worker)) {
    GTEST_SKIP() << "moss-worker not built";
  }
  LocalBackendOptions o = stand_in_options();
  o.worker_binary = worker;
  o.worker_config = {{"tee", "sim"}, {"allow_simulated", "true"}};
  LocalBackend backend(o);
  auto inst = backend.start("i0");
  ASSERT_TRUE(inst.ok()) << inst.status().to_string();
  EXPECT_EQ((*inst)->endpoint().rfind("127.0.0.1:", 0), 0u);
  // Without a KeyService the worker answers a well-defined error, passed through as its Status;
  // the instance stays up (an error answer is not a crash).
  for (int i = 0; i < 2; ++i) {
    auto reply = (*inst)->invoke(request("o/m"), std::chrono::seconds(5));
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(reply.status().code(), ErrorCode::kUnavailable) << reply.status().to_string();
    EXPECT_NE(reply.status().message().find("not configured"), std::string::npos);
  }
  EXPECT_EQ((*inst)->restarts(), 0);
  (*inst)->stop();
}

}  // namespace
}  // namespace moss::packer
