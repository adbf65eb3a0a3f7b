#include "packer/api_server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>
#include <nlohmann/json.hpp>

#include "crypto/envelope.h"
#include "protocol/headers.h"
#include "net/client.h"
#include "net/server.h"
#include "packer_test_util.h"

namespace moss::packer {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const std::string kToken = "0123456789abcdef0123456789abcdef";

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state_ = fs::temp_directory_path() /
             ("packer-api-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(state_);
    start();
  }
  void TearDown() override {
    server_.reset();
    manager_.reset();
    fs::remove_all(state_);
  }
  void start() {
    manager_ = std::make_unique<PoolManager>(PoolManagerOptions{.state_dir = state_}, clock_);
    ASSERT_TRUE(manager_->load_state().ok());
    server_ =
        net::Server::start(net::ServerOptions{}, make_api_router(*manager_, kToken)).value_or_die();
  }
  net::Response call(std::string method, std::string target, std::string body = {},
                     std::string token = kToken) {
    net::ClientOptions o;
    o.port = server_->port();
    net::Client client(o);
    net::Request req = net::Request::make(std::move(method), std::move(target), std::move(body),
                                          "application/json");
    if (!token.empty()) req.headers.set("Authorization", "Bearer " + token);
    return client.request(req).value_or_die();
  }

  fs::path state_;
  SteadyClock clock_;
  std::unique_ptr<PoolManager> manager_;
  net::ServerPtr server_;
};

// Every route but /healthz needs the operator's bearer token.
TEST_F(ApiServerTest, RequiresTheBearerToken) {
  EXPECT_EQ(call("GET", "/healthz", {}, "").status, 200);
  EXPECT_EQ(call("GET", "/v1/pools", {}, "").status, 401);
  EXPECT_EQ(call("GET", "/v1/pools", {}, "wrong-token-wrong-token-wrong-tok").status, 401);
  net::Response ok = call("GET", "/v1/pools");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(json::parse(ok.body)["pools"].size(), 0u);
}

// Create, list, describe and delete a pool; duplicates and bad definitions are refused.
TEST_F(ApiServerTest, PoolsCrud) {
  std::string def = testing::local_pool_json("alpha", 2, 4).dump();
  net::Response created = call("POST", "/v1/pools", def);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(json::parse(created.body)["spec"]["max_instances"], 2);
  EXPECT_EQ(call("POST", "/v1/pools", def).status, 409);
  json bad = testing::local_pool_json("beta", 2, 4);
  bad["max_instnaces"] = 3;
  net::Response rejected = call("POST", "/v1/pools", bad.dump());
  EXPECT_EQ(rejected.status, 400);
  EXPECT_NE(rejected.body.find("max_instnaces"), std::string::npos);
  json list = json::parse(call("GET", "/v1/pools").body);
  ASSERT_EQ(list["pools"].size(), 1u);
  EXPECT_EQ(list["pools"][0]["name"], "alpha");
  EXPECT_EQ(call("GET", "/v1/pools/alpha").status, 200);
  EXPECT_EQ(call("GET", "/v1/pools/nope").status, 404);
  EXPECT_EQ(call("DELETE", "/v1/pools/alpha").status, 200);
  EXPECT_EQ(call("GET", "/v1/pools/alpha").status, 404);
}

// Invoke passes the worker's C3 response through and adds the packer's decision (contract C4).
TEST_F(ApiServerTest, InvokeReturnsWorkerResponsePlusPacker) {
  ASSERT_EQ(call("POST", "/v1/pools", testing::local_pool_json("p", 2, 4).dump()).status, 201);
  json body = {{"model_id", "owner/model"}, {"envelope", testing::costs(1)}, {"deadline_ms", 5000}};
  net::Response r = call("POST", "/v1/pools/p/invoke", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["envelope"], testing::costs(1));
  EXPECT_EQ(j["run"], "cold");
  EXPECT_TRUE(j["timing_ms"].contains("inference"));
  EXPECT_EQ(j["packer"]["decision"], "cold");
  EXPECT_EQ(j["packer"]["instance"], "i0");
  EXPECT_TRUE(j["packer"].contains("queued_ms"));
  json status = json::parse(call("GET", "/v1/pools/p/status").body);
  EXPECT_EQ(status["instances"].size(), 1u);
  EXPECT_EQ(status["instances"][0]["models"][0]["model_id"], "owner/model");
  EXPECT_EQ(status["counters"]["served"], 1);
  // Malformed requests and worker errors keep their codes.
  EXPECT_EQ(call("POST", "/v1/pools/p/invoke", R"({"model_id":"a/../b","envelope":"x"})").status,
            400);
  EXPECT_EQ(call("POST", "/v1/pools/p/invoke", R"({"model_id":"a/b"})").status, 400);
  EXPECT_EQ(call("POST", "/v1/pools/p/invoke", "not json").status, 400);
  EXPECT_EQ(call("POST", "/v1/pools/q/invoke", body.dump()).status, 404);
  net::Response denied =
      call("POST", "/v1/pools/p/invoke", R"({"model_id":"test/deny","envelope":"x"})");
  EXPECT_EQ(denied.status, 403);
  EXPECT_NE(denied.body.find("no grant"), std::string::npos);
}

// Invoke bodies are read strictly (protocol/infer_request.h): wrong types, unknown or duplicate
// keys, bad ids and out-of-range deadlines are 400 before any pool is asked.
TEST_F(ApiServerTest, MalformedInvokeBodiesAreRefused) {
  ASSERT_EQ(call("POST", "/v1/pools", testing::local_pool_json("p", 1, 4).dump()).status, 201);
  for (const char* bad : {
           R"(not json)",
           R"(["o/m","x"])",
           R"({"model_id":"o/m","envelope":"x","colour":"red"})",
           R"({"model_id":"o/m","model_id":"o/n","envelope":"x"})",
           R"({"model_id":["o/m"],"envelope":"x"})",
           R"({"model_id":"o m","envelope":"x"})",
           R"({"model_id":"o/m","envelope":7})",
           R"({"model_id":"o/m","envelope":"x","deadline_ms":"5"})",
           R"({"model_id":"o/m","envelope":"x","deadline_ms":-5})",
           R"({"model_id":"o/m","envelope":"x","deadline_ms":99999999})",
       }) {
    EXPECT_EQ(call("POST", "/v1/pools/p/invoke", bad).status, 400) << bad;
  }
  EXPECT_EQ(json::parse(call("GET", "/v1/pools/p/status").body)["instances"].size(), 0u);
}

// A request no instance can take within its deadline is refused at once: 429 with Retry-After.
TEST_F(ApiServerTest, RefusalForTheDeadlineCarriesRetryAfter) {
  ASSERT_EQ(call("POST", "/v1/pools", testing::local_pool_json("p", 1, 1).dump()).status, 201);
  // The pool's requests take 20 ms: o/b, not measured yet, is priced like them (> 5 ms).
  json warm = {{"model_id", "o/a"}, {"envelope", testing::costs(20)}};
  ASSERT_EQ(call("POST", "/v1/pools/p/invoke", warm.dump()).status, 200);
  json slow = {{"model_id", "o/a"}, {"envelope", testing::costs(1'500)}};
  auto busy = std::async(std::launch::async,
                         [&] { return call("POST", "/v1/pools/p/invoke", slow.dump()).status; });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // it holds the only slot
  json hurried = {{"model_id", "o/b"}, {"envelope", testing::costs(1)}, {"deadline_ms", 5}};
  net::Response r = call("POST", "/v1/pools/p/invoke", hurried.dump());
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.headers.get_or("Retry-After", ""), "1");
  EXPECT_EQ(busy.get(), 200);
}

// A binary envelope body is routed by the model it names and answered in binary, FnPacker's
// annotation in a header; malformed binary requests are refused before any routing.
TEST_F(ApiServerTest, BinaryInvoke) {
  ASSERT_EQ(call("POST", "/v1/pools", testing::local_pool_json("p", 2, 4).dump()).status, 201);
  std::vector<uint8_t> key(32, 3);
  auto sealed = [&](protocol::Direction d) {
    return crypto::seal_envelope(key, {"owner/model", "user-1", "r-1", d}, {}, {}, protocol::EnvelopeEncoding::kBinary)
        .value_or_die();
  };
  auto send = [&](std::string body, std::string deadline = {}) {
    net::ClientOptions o;
    o.port = server_->port();
    net::Client client(o);
    net::Request req = net::Request::make("POST", "/v1/pools/p/invoke", std::move(body), protocol::kEnvelopeMediaType);
    req.headers.set("Authorization", "Bearer " + kToken);
    if (!deadline.empty()) req.headers.set(protocol::kDeadlineHeader, deadline);
    return client.request(req).value_or_die();
  };
  const std::string request = sealed(protocol::Direction::kRequest);
  net::Response r = send(request, "5000");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.get_or("Content-Type", ""), protocol::kEnvelopeMediaType);
  EXPECT_EQ(r.body, request);  // the stand-in echoes; passed through unconverted
  EXPECT_EQ(r.headers.get_or("Moss-Run", ""), "cold");
  json packer = json::parse(r.headers.get_or("Moss-Packer", "{}"));
  EXPECT_EQ(packer["decision"], "cold");
  EXPECT_EQ(packer["instance"], "i0");
  EXPECT_TRUE(json::parse(r.headers.get_or("Moss-Timing-Ms", "{}")).contains("inference"));
  json status = json::parse(call("GET", "/v1/pools/p/status").body);
  EXPECT_EQ(status["instances"][0]["models"][0]["model_id"], "owner/model");

  EXPECT_EQ(send(request.substr(0, 30)).status, 400);
  EXPECT_EQ(send("{\"model_id\":\"owner/model\"}").status, 400);
  EXPECT_EQ(send(sealed(protocol::Direction::kResponse)).status, 400);
  EXPECT_EQ(send(request, "-1").status, 400);
  EXPECT_EQ(send(request, "soon").status, 400);
}

// A worker's sealed error (it opened the request and failed) reaches the client unchanged: status,
// body (JSON byte for byte as the worker renders it; binary envelope and its category header), no
// FnPacker annotation.
TEST_F(ApiServerTest, SealedWorkerErrorPassesThroughUnchanged) {
  ASSERT_EQ(call("POST", "/v1/pools", testing::local_pool_json("p", 2, 4).dump()).status, 201);
  const std::string worker_body =
      R"({"error":{"code":"invalid-argument","category":"bad-input","message":"bad-input: the request failed; )"
      R"(the detail is sealed for the user in the response envelope"},"envelope":"sealed-bytes"})";
  net::Response r = call("POST", "/v1/pools/p/invoke", R"({"model_id":"test/sealed","envelope":"sealed-bytes"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, worker_body);

  std::vector<uint8_t> key(32, 3);
  const std::string request =
      crypto::seal_envelope(key, {"test/sealed", "user-1", "r-1", protocol::Direction::kRequest}, {}, {},
                            protocol::EnvelopeEncoding::kBinary)
          .value_or_die();
  net::ClientOptions o;
  o.port = server_->port();
  net::Client client(o);
  net::Request req = net::Request::make("POST", "/v1/pools/p/invoke", request, protocol::kEnvelopeMediaType);
  req.headers.set("Authorization", "Bearer " + kToken);
  net::Response b = client.request(req).value_or_die();
  EXPECT_EQ(b.status, 400);
  EXPECT_EQ(b.headers.get_or("Content-Type", ""), protocol::kEnvelopeMediaType);
  EXPECT_EQ(b.headers.get_or("Moss-Error-Category", ""), "bad-input");
  EXPECT_EQ(b.body, request);
  EXPECT_FALSE(b.headers.contains("Moss-Packer"));
  json status = json::parse(call("GET", "/v1/pools/p/status").body);
  EXPECT_EQ(status["counters"]["failed"], 2);
}

// Pools survive a restart of the packer (saved in the state directory, 0600).
TEST_F(ApiServerTest, PoolsArePersisted) {
  ASSERT_EQ(call("POST", "/v1/pools", testing::local_pool_json("keep", 2, 4).dump()).status, 201);
  EXPECT_EQ(fs::status(state_ / "pools.json").permissions() & fs::perms::group_all,
            fs::perms::none);
  server_.reset();
  manager_.reset();
  start();
  EXPECT_EQ(call("GET", "/v1/pools/keep").status, 200);
}

// Pool definitions are read strictly (issue 17, item 5): a duplicate key, a value of the wrong
// type, an oversize name or value and a too deep body are refused with 400 naming the field.
TEST_F(ApiServerTest, PoolDefinitionsAreReadStrictly) {
  const std::string def = testing::local_pool_json("strict", 2, 4).dump();
  ASSERT_EQ(def.front(), '{');
  auto refused = [&](const std::string& body, const std::string& says) {
    net::Response r = call("POST", "/v1/pools", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_NE(r.body.find(says), std::string::npos) << r.body;
  };
  refused(R"({"max_instances":1,)" + def.substr(1), "duplicate key 'max_instances'");
  json wrong = json::parse(def);
  wrong["max_instances"] = "2";
  refused(wrong.dump(), "max_instances");
  wrong = json::parse(def);
  wrong["max_concurrency"] = 2.5;
  refused(wrong.dump(), "max_concurrency");
  wrong = json::parse(def);
  wrong["min_instances"] = -1;
  refused(wrong.dump(), "min_instances");
  wrong = json::parse(def);
  wrong["worker_binary"] = std::string(5000, 'x');
  refused(wrong.dump(), "worker_binary");
  wrong = json::parse(def);
  wrong["name"] = std::string(64, 'a');
  refused(wrong.dump(), "name");
  wrong = json::parse(def);
  wrong["worker_config"] = {{"nested", {{"deeper", {{"deepest", {1}}}}}}};
  refused(wrong.dump(), "nested deeper");
  wrong = json::parse(def);
  wrong["worker_config"] = {{"k", std::string(5000, 'v')}};
  refused(wrong.dump(), "worker_config 'k'");
  refused("[1]", "JSON object");
  EXPECT_EQ(call("GET", "/v1/pools/strict").status, 404);
  EXPECT_EQ(call("POST", "/v1/pools", def).status, 201);
}

// A damaged pools.json (a duplicate key, a wrong type) is data loss at start, not a silent guess.
TEST_F(ApiServerTest, DamagedPoolsFileIsRefused) {
  server_.reset();
  manager_.reset();
  const std::string spec = testing::local_pool_json("keep", 2, 4).dump();
  for (const std::string& bad : std::vector<std::string>{R"({"version":1,"version":1,"pools":[]})",
                                 R"({"version":"1","pools":[]})",
                                 R"({"version":1,"pools":{}})",
                                 R"({"version":1,"pools":[{"name":"keep","name":"other")" + spec.substr(1) + "]}"}) {
    std::ofstream(state_ / "pools.json") << bad;
    PoolManager m(PoolManagerOptions{.state_dir = state_}, clock_);
    Status s = m.load_state();
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.code(), ErrorCode::kDataLoss) << bad << ": " << s.to_string();
  }
  fs::remove(state_ / "pools.json");
  start();
}

}  // namespace
}  // namespace moss::packer
