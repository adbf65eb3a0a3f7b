#include "net/client.h"
#include "net/server.h"
#include "worker/worker_api.h"
#include "worker/worker_app.h"
#include "worker_fixture.h"

#include <nlohmann/json.hpp>

namespace moss::worker {
namespace {

using namespace testing;

// Forwards to a MemoryKeySource the test keeps controlling.
class ForwardingKeys : public KeySource {
 public:
  explicit ForwardingKeys(MemoryKeySource& s) : s_(s) {}
  Result<ReleasedKeys> release(std::string_view m, std::string_view u) override { return s_.release(m, u); }

 private:
  MemoryKeySource& s_;
};

// A worker on loopback configured by flags (or at /init), with models "o/linear" and "o/mlp"
// published to a directory store and the test user granted both.
class WorkerAppTest : public ::testing::Test {
 protected:
  void start(bool configure_now, std::map<std::string, std::string> extra = {}) {
    publish(store_.path(), keys_, "o/linear", "linear");
    publish(store_.path(), keys_, "o/mlp", "mlp");
    keys_.grant("o/linear", kUser, request_key_);
    keys_.grant("o/mlp", kUser, request_key_);
    std::map<std::string, std::string> flags = extra;
    if (configure_now) {
      flags["keyservice_url"] = "https://127.0.0.1:1";
      flags["keyservice_policy"] = R"({"version":1})";
      flags["model_store"] = store_.path().string();
    }
    auto settings = load_worker_settings("", flags, [](const std::string&) { return std::nullopt; });
    ASSERT_TRUE(settings.ok()) << settings.status().to_string();
    app_ = std::make_unique<WorkerApp>(std::move(settings).value(),
                                       [this](const WorkerConfig& c, Metrics& m) -> Result<std::shared_ptr<InferenceService>> {
                                         auto store = make_model_store(c.model_store, c.max_model_bytes);
                                         if (!store.ok()) return store.status();
                                         return std::make_shared<InferenceService>(
                                             c, std::make_unique<ForwardingKeys>(keys_), std::move(store).value(), m);
                                       });
    ASSERT_TRUE(app_->configure_if_complete().ok());
    net::ServerOptions o;
    o.worker_threads = 20;
    o.max_body_bytes = 64 << 20;
    server_ = net::Server::start(std::move(o), app_->router()).value_or_die();
  }
  net::Client client() {
    net::ClientOptions o;
    o.port = server_->port();
    return net::Client(o);
  }
  net::Response post(const std::string& path, const std::string& body) {
    auto c = client();
    return c.post(path, body).value_or_die();
  }
  std::string request_body(const std::string& model, const std::string& request_id, float seed,
                           const std::string& input_name = "x") {
    return nlohmann::json{{"model_id", model},
                          {"envelope", seal_request(request_key_, model, kUser, request_id,
                                                    one_input(input_name, input_tensor(seed)))}}
        .dump();
  }
  std::string init_body() {
    return nlohmann::json{{"value",
                           {{"name", "moss"},
                            {"main", "main"},
                            {"keyservice_url", "https://127.0.0.1:1"},
                            {"keyservice_policy", R"({"version":1})"},
                            {"model_store", store_.path().string()}}}}
        .dump();
  }
  // Checks a 200 response object and that its output equals the in-process run bit for bit.
  void expect_correct(const nlohmann::json& result, const std::string& model, const std::string& file,
                      const std::string& request_id, float seed) {
    ASSERT_TRUE(result.contains("envelope")) << result.dump();
    auto out = open_response(request_key_, model, kUser, request_id, result["envelope"].get<std::string>());
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    const Tensor* y = out->find("y");
    ASSERT_NE(y, nullptr);
    EXPECT_TRUE(y->equals(reference_output(file, input_tensor(seed))));
  }

  TempDir store_;
  MemoryKeySource keys_;
  SecretBytes request_key_ = fresh_key();
  std::unique_ptr<WorkerApp> app_;
  net::ServerPtr server_;
};

TEST_F(WorkerAppTest, InferReturnsSealedOutputTimingAndRunKind) {
  start(true);
  auto r = post("/v1/infer", request_body("o/linear", "req-1", 1.0f));
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = nlohmann::json::parse(r.body);
  expect_correct(j, "o/linear", "linear", "req-1", 1.0f);
  EXPECT_EQ(j["run"], "cold");
  for (const char* k : {"key_fetch", "model_fetch", "decrypt", "compile", "inference", "encrypt", "total"}) {
    EXPECT_TRUE(j["timing_ms"].contains(k)) << k;
  }
  EXPECT_GT(j["timing_ms"]["compile"].get<double>(), 0.0);
  EXPECT_EQ(j["instance"]["instance_id"], app_->instance_id());
  auto w = nlohmann::json::parse(post("/v1/infer", request_body("o/linear", "req-2", 2.0f)).body);
  EXPECT_EQ(w["run"], "warm");
  EXPECT_EQ(w["timing_ms"]["compile"].get<double>(), 0.0);
  auto s = nlohmann::json::parse(post("/v1/infer", request_body("o/mlp", "req-3", 3.0f)).body);
  EXPECT_EQ(s["run"], "switch");
  expect_correct(s, "o/mlp", "mlp", "req-3", 3.0f);
  EXPECT_EQ(keys_.calls.load(), 2);  // one release per (model, user): the key cache holds them

  auto c = client();
  auto status = nlohmann::json::parse(c.get("/v1/status").value_or_die().body);
  EXPECT_EQ(status["models"].size(), 2u);
  EXPECT_EQ(status["in_flight"], 0);
  EXPECT_GT(status["memory_used_bytes"].get<uint64_t>(), 0u);
  for (const char* k : {"model_id", "weights_bytes", "arena_bytes", "contexts", "in_use", "last_used_ms_ago"}) {
    EXPECT_TRUE(status["models"][0].contains(k)) << k;
  }
  auto metrics = c.get("/metrics").value_or_die().body;
  EXPECT_NE(metrics.find("moss_worker_requests_total{endpoint=\"infer\",outcome=\"ok\"} 3"), std::string::npos);
  EXPECT_NE(metrics.find("moss_worker_runs_total{kind=\"warm\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("moss_worker_resident_models 2"), std::string::npos);
  EXPECT_NE(metrics.find("moss_worker_request_duration_seconds_bucket{phase=\"total\",le=\"+Inf\"} 3"),
            std::string::npos);
  EXPECT_EQ(c.get("/healthz").value_or_die().status, 200);
}

// A binary envelope body is answered with a binary response envelope, run and timing in
// headers; the outputs equal the JSON path's. Malformed binary bodies are 400s in net's shape.
TEST_F(WorkerAppTest, BinaryEnvelopeBodyIsAnsweredInKind) {
  start(true);
  auto c = client();
  auto send = [&](std::string body) {
    return c.request(net::Request::make("POST", "/v1/infer", std::move(body), crypto::kEnvelopeMediaType))
        .value_or_die();
  };
  auto sealed = [&](const std::string& request_id, float seed) {
    auto bytes = write_safetensors(one_input("x", input_tensor(seed))).value_or_die();
    return crypto::seal_envelope(request_key_.span(), {"o/mlp", kUser, request_id, crypto::Direction::kRequest},
                                 bytes, {}, crypto::EnvelopeEncoding::kBinary)
        .value_or_die();
  };
  for (int i = 0; i < 2; ++i) {
    const std::string id = "bin-" + std::to_string(i);
    auto r = send(sealed(id, 0.5f + static_cast<float>(i)));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers.get_or("Content-Type", ""), crypto::kEnvelopeMediaType);
    EXPECT_EQ(r.headers.get_or(kRunHeader, ""), i == 0 ? "cold" : "warm");
    auto timing = nlohmann::json::parse(r.headers.get_or(kTimingHeader, ""));
    for (const char* k : {"key_fetch", "model_fetch", "decrypt", "compile", "inference", "encrypt", "total"}) {
      EXPECT_TRUE(timing.contains(k)) << k;
    }
    EXPECT_EQ(nlohmann::json::parse(r.headers.get_or(kInstanceHeader, "{}"))["instance_id"], app_->instance_id());
    EXPECT_EQ(crypto::envelope_encoding(r.body), crypto::EnvelopeEncoding::kBinary);
    auto out = open_response(request_key_, "o/mlp", kUser, id, r.body);
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    EXPECT_TRUE(out->find("y")->equals(reference_output("mlp", input_tensor(0.5f + static_cast<float>(i)))));
  }
  // The same request over JSON gives the same output.
  auto j = nlohmann::json::parse(post("/v1/infer", request_body("o/mlp", "json-1", 0.5f)).body);
  expect_correct(j, "o/mlp", "mlp", "json-1", 0.5f);

  auto not_binary = send(request_body("o/mlp", "x-1", 1.0f));
  EXPECT_EQ(not_binary.status, 400);
  EXPECT_EQ(nlohmann::json::parse(not_binary.body)["error"]["code"], "invalid-argument");
  std::string truncated = sealed("x-2", 1.0f);
  truncated.resize(20);
  EXPECT_EQ(send(truncated).status, 400);
  std::string tampered = sealed("x-3", 1.0f);
  tampered[tampered.size() - 1] ^= 1;
  EXPECT_EQ(send(tampered).status, 401);
  EXPECT_EQ(send("").status, 400);
}

// OpenWhisk: /run before /init is refused; /init is accepted once; the second is refused with
// the runtimes' message; /run carries the request in `value` and errors as {"error": "..."}.
TEST_F(WorkerAppTest, OpenWhiskInitOnceAndRun) {
  start(false);
  auto before = post("/run", nlohmann::json{{"value", nlohmann::json::parse(request_body("o/linear", "r", 1))}}.dump());
  EXPECT_EQ(before.status, 500);
  EXPECT_TRUE(nlohmann::json::parse(before.body)["error"].is_string());
  auto infer_before = post("/v1/infer", request_body("o/linear", "r", 1));
  EXPECT_EQ(infer_before.status, 503) << infer_before.body;

  auto incomplete = post("/init", R"({"value":{"name":"moss","main":"main"}})");
  EXPECT_EQ(incomplete.status, 400) << incomplete.body;
  EXPECT_NE(incomplete.body.find("keyservice_url"), std::string::npos);

  auto init = post("/init", init_body());
  ASSERT_EQ(init.status, 200) << init.body;
  auto again = post("/init", init_body());
  EXPECT_EQ(again.status, 403);
  EXPECT_EQ(nlohmann::json::parse(again.body), (nlohmann::json{{"error", kInitTwiceMessage}}));

  auto run = post("/run", nlohmann::json{{"value", nlohmann::json::parse(request_body("o/linear", "r1", 5))},
                                         {"activation_id", "a1"},
                                         {"namespace", "guest"},
                                         {"action_name", "/guest/moss"},
                                         {"deadline", 0}}
                              .dump());
  ASSERT_EQ(run.status, 200) << run.body;
  expect_correct(nlohmann::json::parse(run.body), "o/linear", "linear", "r1", 5);

  auto bad = post("/run", R"({"value":{"model_id":"o/linear"}})");
  EXPECT_EQ(bad.status, 400);
  auto j = nlohmann::json::parse(bad.body);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_TRUE(j["error"].is_string());
  EXPECT_EQ(post("/run", "not json").status, 400);
}

// Concurrent /run calls over two models are served in parallel and all correct.
TEST_F(WorkerAppTest, SixteenConcurrentRequestsOverTwoModels) {
  start(false, {{"max_concurrency", "16"}});
  ASSERT_EQ(post("/init", init_body()).status, 200);
  std::vector<std::thread> threads;
  std::vector<nlohmann::json> results(16);
  std::vector<int> statuses(16);
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      const std::string model = i % 2 ? "o/mlp" : "o/linear";
      auto body = nlohmann::json{{"value", nlohmann::json::parse(request_body(model, "c" + std::to_string(i),
                                                                               static_cast<float>(i)))}};
      auto r = post("/run", body.dump());
      statuses[i] = r.status;
      results[i] = nlohmann::json::parse(r.body);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 16; ++i) {
    ASSERT_EQ(statuses[i], 200) << results[i].dump();
    expect_correct(results[i], i % 2 ? "o/mlp" : "o/linear", i % 2 ? "mlp" : "linear", "c" + std::to_string(i),
                   static_cast<float>(i));
  }
  auto snap = nlohmann::json::parse(client().get("/v1/status").value_or_die().body);
  EXPECT_EQ(snap["models"].size(), 2u);
  EXPECT_EQ(keys_.calls.load(), 2);
}

// Every bad input is a clean error with the right status; the worker keeps serving.
TEST_F(WorkerAppTest, ErrorsAreMappedAndWorkerRecovers) {
  start(true);
  EXPECT_EQ(post("/v1/infer", "{").status, 400);
  EXPECT_EQ(post("/v1/infer", R"({"model_id":"o/linear","envelope":"nope"})").status, 400);
  EXPECT_EQ(post("/v1/infer", R"({"model_id":"o/linear"})").status, 400);
  EXPECT_EQ(post("/v1/infer", R"({"model_id":"../etc/passwd","envelope":"{}"})").status, 400);
  // Envelope for another model than the request names.
  EXPECT_EQ(post("/v1/infer", nlohmann::json{{"model_id", "o/mlp"},
                                             {"envelope", seal_request(request_key_, "o/linear", kUser, "r",
                                                                       one_input("x", input_tensor(1)))}}
                                  .dump())
                .status,
            400);
  // Tampered ciphertext: authentication fails.
  {
    auto env = nlohmann::json::parse(seal_request(request_key_, "o/linear", kUser, "r", one_input("x", input_tensor(1))));
    std::string ct = env["ciphertext"];
    ct[10] = ct[10] == 'A' ? 'B' : 'A';
    env["ciphertext"] = ct;
    auto r = post("/v1/infer", nlohmann::json{{"model_id", "o/linear"}, {"envelope", env.dump()}}.dump());
    EXPECT_EQ(r.status, 401) << r.body;
  }
  // Under another key (not the registered request key).
  {
    auto r = post("/v1/infer", nlohmann::json{{"model_id", "o/linear"},
                                              {"envelope", seal_request(fresh_key(), "o/linear", kUser, "r",
                                                                        one_input("x", input_tensor(1)))}}
                                   .dump());
    EXPECT_EQ(r.status, 401) << r.body;
  }
  // A response envelope replayed as a request.
  {
    auto ok = nlohmann::json::parse(post("/v1/infer", request_body("o/linear", "r9", 1)).body);
    auto r = post("/v1/infer", nlohmann::json{{"model_id", "o/linear"}, {"envelope", ok["envelope"]}}.dump());
    EXPECT_EQ(r.status, 400) << r.body;
  }
  // Wrong input name, wrong dtype, wrong shape.
  EXPECT_EQ(post("/v1/infer", request_body("o/linear", "r", 1, "nope")).status, 400);
  {
    TensorBundle b;
    b.add("x", Tensor::from_vector<int64_t>({1, 8}, std::vector<int64_t>(8, 1))).check();
    auto r = post("/v1/infer", nlohmann::json{{"model_id", "o/linear"},
                                              {"envelope", seal_request(request_key_, "o/linear", kUser, "r", b)}}
                                   .dump());
    EXPECT_EQ(r.status, 400) << r.body;
    TensorBundle s;
    s.add("x", Tensor::from_vector<float>({1, 3}, {1, 2, 3})).check();
    r = post("/v1/infer", nlohmann::json{{"model_id", "o/linear"},
                                         {"envelope", seal_request(request_key_, "o/linear", kUser, "r", s)}}
                              .dump());
    EXPECT_EQ(r.status, 400) << r.body;
  }
  // Unknown model (the KeyService does not know it), ungranted user.
  EXPECT_EQ(post("/v1/infer", request_body("o/unknown", "r", 1)).status, 404);
  keys_.set_model_key("o/secret", fresh_key());
  EXPECT_EQ(post("/v1/infer", request_body("o/secret", "r", 1)).status, 403);
  // Model missing from the store although the KeyService knows it.
  keys_.grant("o/secret", kUser, request_key_);
  EXPECT_EQ(post("/v1/infer", request_body("o/secret", "r", 1)).status, 404);

  auto metrics = client().get("/metrics").value_or_die().body;
  EXPECT_NE(metrics.find("moss_worker_errors_total{code=\"unauthenticated\"} 2"), std::string::npos) << metrics;
  // Still serving.
  auto good = post("/v1/infer", request_body("o/mlp", "r10", 2));
  ASSERT_EQ(good.status, 200);
  expect_correct(nlohmann::json::parse(good.body), "o/mlp", "mlp", "r10", 2);
}

// A corrupted model file is a clean data-loss error; once the file is restored the next request
// loads it (failures are not cached). KeyService down: unavailable, then recovery.
TEST_F(WorkerAppTest, CorruptedModelFileAndKeyServiceOutage) {
  start(true);
  const auto path = store_.path() / "o/mlp.moss";
  auto original = read_file(path, 1 << 20).value_or_die();
  auto corrupted = original;
  corrupted[corrupted.size() / 2] ^= 0x40;
  write_file(path, corrupted).check();
  auto r = post("/v1/infer", request_body("o/mlp", "r1", 1));
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_NE(r.body.find("data-loss"), std::string::npos) << r.body;
  write_file(path, original).check();
  EXPECT_EQ(post("/v1/infer", request_body("o/mlp", "r2", 1)).status, 200);

  keys_.down = true;
  auto down = post("/v1/infer", request_body("o/linear", "r3", 1));
  EXPECT_EQ(down.status, 503) << down.body;
  keys_.down = false;
  EXPECT_EQ(post("/v1/infer", request_body("o/linear", "r4", 1)).status, 200);
}

// Beyond max_concurrency requests are refused at once (429), not queued without bound.
TEST_F(WorkerAppTest, RefusesBeyondMaxConcurrency) {
  start(true, {{"max_concurrency", "1"}});
  keys_.delay = std::chrono::milliseconds(300);
  std::thread slow([&] { EXPECT_EQ(post("/v1/infer", request_body("o/linear", "a", 1)).status, 200); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(post("/v1/infer", request_body("o/linear", "b", 1)).status, 429);
  slow.join();
}

}  // namespace
}  // namespace moss::worker
