#include "packer/openwhisk_backend.h"

#include <gtest/gtest.h>

#include "crypto/envelope.h"
#include "fake_openwhisk.h"
#include "packer/wire.h"
#include "packer_test_util.h"

namespace moss::packer {
namespace {

using nlohmann::json;

OpenWhiskBackendOptions options_for(const testing::FakeOpenWhisk& ow, std::string auth) {
  OpenWhiskBackendOptions o;
  o.spec.api_host = ow.url();
  o.spec.ns = "guest";
  o.spec.image = "registry.example/moss-worker:1";
  o.spec.action_prefix = "moss-default";
  o.spec.timeout_ms = 30'000;
  o.auth = std::move(auth);
  o.max_concurrency = 7;
  o.memory_mb = 2048;
  o.worker_config = {{"keyservice_url", "https://ks:7443"}};
  o.poll_interval = std::chrono::milliseconds(5);
  return o;
}

const std::string kBody = R"({"model_id":"o/m","envelope":"ciphertext"})";

// The worker's sealed error (its /run answer keeps everything inside `error`, the only field
// OpenWhisk records) comes back as the worker's JSON error result, exactly as the local backend
// passes it on (ApiServerTest.SealedWorkerErrorPassesThroughUnchanged), not as FnPacker's own
// error; through the blocking answer (502) and through a polled activation record alike.
TEST(OpenWhiskBackendTest, SealedWorkerErrorPassesThroughUnchanged) {
  for (int polls : {0, 2}) {
    testing::FakeOpenWhisk ow("u1:secret");
    ow.set_async(polls);
    auto backend = OpenWhiskBackend::create(options_for(ow, "u1:secret")).value_or_die();
    auto inst = backend->start("i0").value_or_die();
    auto reply = inst->invoke(R"({"model_id":"test/sealed","envelope":"sealed-bytes"})", std::chrono::seconds(5));
    ASSERT_TRUE(reply.ok()) << reply.status().to_string();
    ASSERT_TRUE(reply->error.has_value());
    EXPECT_EQ(reply->error->code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(reply->error->category, "bad-input");
    EXPECT_EQ(reply->envelope, "sealed-bytes");
    EXPECT_EQ(ow.polls(), polls);
  }
}

// Start creates a blackbox action from the image with the pool's limits and worker settings.
TEST(OpenWhiskBackendTest, CreatesActionWithImageLimitsAndInitParameters) {
  testing::FakeOpenWhisk ow("u1:secret");
  auto backend = OpenWhiskBackend::create(options_for(ow, "u1:secret")).value_or_die();
  auto inst = backend->start("i0");
  ASSERT_TRUE(inst.ok()) << inst.status().to_string();
  EXPECT_EQ((*inst)->endpoint(), "action moss-default-i0");
  json action = ow.action("moss-default-i0");
  ASSERT_TRUE(action.is_object());
  EXPECT_EQ(action["exec"]["kind"], "blackbox");
  EXPECT_EQ(action["exec"]["image"], "registry.example/moss-worker:1");
  EXPECT_EQ(action["limits"]["concurrency"], 7);
  EXPECT_EQ(action["limits"]["memory"], 2048);
  EXPECT_EQ(action["limits"]["timeout"], 30'000);
  bool found = false;
  for (const json& p : action["parameters"]) {
    if (p["key"] == "MOSS_WORKER_KEYSERVICE_URL") {
      found = true;
      EXPECT_EQ(p["value"], "https://ks:7443");
      EXPECT_EQ(p["init"], true);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(ow.namespaces().at(0), "guest");
}

// A blocking invocation returns the action's result: the worker's C3 response.
TEST(OpenWhiskBackendTest, InvokesBlockingAndReturnsResult) {
  testing::FakeOpenWhisk ow("u1:secret");
  auto backend = OpenWhiskBackend::create(options_for(ow, "u1:secret")).value_or_die();
  auto inst = backend->start("i0").value_or_die();
  auto reply = inst->invoke(kBody, std::chrono::seconds(5));
  ASSERT_TRUE(reply.ok()) << reply.status().to_string();
  json j = testing::result_json(*reply);
  EXPECT_EQ(j["envelope"], "ciphertext");
  EXPECT_EQ(j["run"], "warm");
  EXPECT_EQ(ow.last_params()["model_id"], "o/m");
  EXPECT_EQ(ow.polls(), 0);
}

// OpenWhisk's /run is JSON only: a binary request envelope reaches the action in its JSON form,
// with the model id it names, and still opens under the request key.
TEST(OpenWhiskBackendTest, SendsABinaryEnvelopeInItsJsonForm) {
  testing::FakeOpenWhisk ow("u1:secret");
  auto backend = OpenWhiskBackend::create(options_for(ow, "u1:secret")).value_or_die();
  auto inst = backend->start("i0").value_or_die();
  std::vector<uint8_t> key(32, 9);
  const protocol::EnvelopeHeader h{"o/m", "user-1", "req-9", protocol::Direction::kRequest};
  const std::string plain = "tensors";
  const std::string binary =
      crypto::seal_envelope(key, h, std::span(reinterpret_cast<const uint8_t*>(plain.data()), plain.size()), {},
                            protocol::EnvelopeEncoding::kBinary)
          .value_or_die();
  auto reply = inst->invoke(binary, std::chrono::seconds(5));
  ASSERT_TRUE(reply.ok()) << reply.status().to_string();
  const json params = ow.last_params();
  EXPECT_EQ(params["model_id"], "o/m");
  const std::string sent = params["envelope"];
  EXPECT_EQ(protocol::envelope_encoding(sent), protocol::EnvelopeEncoding::kJson);
  auto opened = crypto::open_envelope(key, h, sent);
  ASSERT_TRUE(opened.ok()) << opened.status().to_string();
  EXPECT_EQ(std::string(opened->span().begin(), opened->span().end()), plain);
  // The fake echoes the envelope back as the result's envelope: JSON, as the pool expects.
  EXPECT_EQ(testing::result_json(*reply)["envelope"], sent);
}

// When the blocking wait times out (202 + activationId) the backend polls the activation.
TEST(OpenWhiskBackendTest, FallsBackToPollingTheActivation) {
  testing::FakeOpenWhisk ow("u1:secret");
  ow.set_async(3);
  auto backend = OpenWhiskBackend::create(options_for(ow, "u1:secret")).value_or_die();
  auto inst = backend->start("i0").value_or_die();
  auto reply = inst->invoke(kBody, std::chrono::seconds(5));
  ASSERT_TRUE(reply.ok()) << reply.status().to_string();
  EXPECT_EQ(testing::result_json(*reply)["envelope"], "ciphertext");
  EXPECT_EQ(ow.polls(), 3);
}

// Polling gives up at the request's timeout with deadline-exceeded.
TEST(OpenWhiskBackendTest, PollingStopsAtTheTimeout) {
  testing::FakeOpenWhisk ow("u1:secret");
  ow.set_async(1'000'000);
  auto backend = OpenWhiskBackend::create(options_for(ow, "u1:secret")).value_or_die();
  auto inst = backend->start("i0").value_or_die();
  auto reply = inst->invoke(kBody, std::chrono::milliseconds(100));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), ErrorCode::kDeadlineExceeded);
}

// Platform and action errors become clear Status values.
TEST(OpenWhiskBackendTest, MapsErrors) {
  testing::FakeOpenWhisk ow("u1:secret");
  auto bad = OpenWhiskBackend::create(options_for(ow, "u1:wrong")).value_or_die();
  auto denied = bad->start("i0");
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(denied.status().message().find("credentials"), std::string::npos);

  auto backend = OpenWhiskBackend::create(options_for(ow, "u1:secret")).value_or_die();
  auto inst = backend->start("i0").value_or_die();
  auto failed = inst->invoke(R"({"model_id":"test/fail","envelope":"x"})", std::chrono::seconds(5));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(failed.status().message().find("no grant for test/fail"), std::string::npos);

  ow.set_throttle(true);
  auto throttled = inst->invoke(kBody, std::chrono::seconds(5));
  EXPECT_EQ(throttled.status().code(), ErrorCode::kResourceExhausted);

  EXPECT_FALSE(OpenWhiskBackend::create(options_for(ow, "no-colon")).ok());
}

// OpenWhisk's answers are read strictly (issue 17, item 5): a result, a 202 answer or an
// activation record with a duplicate key or a field of the wrong type is an error, not a guess
// at which member counts.
TEST(OpenWhiskBackendTest, MalformedAnswersAreErrors) {
  testing::FakeOpenWhisk ow("u1:secret");
  auto backend = OpenWhiskBackend::create(options_for(ow, "u1:secret")).value_or_die();
  auto inst = backend->start("i0").value_or_die();
  auto invoke = [&](const std::string& model) {
    return inst->invoke(R"({"model_id":")" + model + R"(","envelope":"x"})", std::chrono::seconds(5));
  };
  ow.answer_raw("t/dup", 200, R"({"envelope":"a","envelope":"b","run":"warm"})");
  auto dup = invoke("t/dup");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), ErrorCode::kInternal);
  EXPECT_NE(dup.status().message().find("duplicate key 'envelope'"), std::string::npos) << dup.status().message();

  ow.answer_raw("t/notjson", 200, "{\"envelope\":");
  EXPECT_EQ(invoke("t/notjson").status().code(), ErrorCode::kInternal);

  // A sealed error whose `error` is given twice is not passed on as the worker's answer.
  ow.answer_raw("t/dup-sealed", 502,
                R"({"error":{"code":"invalid-argument","category":"bad-input","message":"m","envelope":"e"},)"
                R"("error":{"code":"internal","category":"bad-input","message":"m","envelope":"f"}})");
  auto sealed = invoke("t/dup-sealed");
  EXPECT_FALSE(sealed.ok());

  ow.answer_raw("t/dup-id", 202, R"({"activationId":"a1","activationId":"a2"})");
  auto no_id = invoke("t/dup-id");
  ASSERT_FALSE(no_id.ok());
  EXPECT_NE(no_id.status().message().find("without an activationId"), std::string::npos);

  ow.answer_raw("t/long-id", 202, R"({"activationId":")" + std::string(300, 'a') + R"("})");
  EXPECT_FALSE(invoke("t/long-id").ok());

  ow.answer_raw("t/poll", 202, R"({"activationId":"rec1"})");
  ow.record_raw("rec1", R"({"response":{"success":"yes","result":{}}})");
  auto typed = invoke("t/poll");
  ASSERT_FALSE(typed.ok());
  EXPECT_EQ(typed.status().code(), ErrorCode::kInternal);
  EXPECT_NE(typed.status().message().find("success"), std::string::npos) << typed.status().message();

  ow.answer_raw("t/poll2", 202, R"({"activationId":"rec2"})");
  ow.record_raw("rec2", R"({"response":{"success":true,"result":{}},"response":{"success":false}})");
  auto twice = invoke("t/poll2");
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("duplicate key 'response'"), std::string::npos) << twice.status().message();
}

// Stopping an instance deletes its action; invoking a deleted action is not-found.
TEST(OpenWhiskBackendTest, StopDeletesTheAction) {
  testing::FakeOpenWhisk ow("u1:secret");
  auto backend = OpenWhiskBackend::create(options_for(ow, "u1:secret")).value_or_die();
  auto inst = backend->start("i3").value_or_die();
  EXPECT_EQ(ow.action_count(), 1u);
  inst->stop();
  EXPECT_EQ(ow.action_count(), 0u);
  EXPECT_EQ(ow.deletes(), 1);
  auto gone = inst->invoke(kBody, std::chrono::seconds(1));
  EXPECT_EQ(gone.status().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace moss::packer
