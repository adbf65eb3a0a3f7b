#include "client/infer_client.h"
#include "common/logging.h"
#include "common/reply_error.h"
#include "net/client.h"
#include "net/server.h"
#include "unit/engine/model_builder.h"
#include "support/log_capture.h"
#include "protocol/error_category.h"
#include "protocol/headers.h"
#include "worker/worker_app.h"
#include "worker_fixture.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <sstream>

namespace moss::worker {
namespace {

using namespace testing;

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
                                         if (factory_failure_) return *factory_failure_;
                                         auto store = make_model_store(c.model_store, c.max_model_bytes);
                                         if (!store.ok()) return store.status();
                                         return std::make_shared<InferenceService>(
                                             c, std::make_unique<ForwardingKeySource>(keys_), std::move(store).value(), m);
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
  std::optional<Status> factory_failure_;  // set: the service factory fails with it (at /init)
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
    return c.request(net::Request::make("POST", "/v1/infer", std::move(body), protocol::kEnvelopeMediaType))
        .value_or_die();
  };
  auto sealed = [&](const std::string& request_id, float seed) {
    auto bytes = write_safetensors(one_input("x", input_tensor(seed))).value_or_die();
    return crypto::seal_envelope(request_key_.span(), {"o/mlp", kUser, request_id, protocol::Direction::kRequest},
                                 bytes, {}, protocol::EnvelopeEncoding::kBinary)
        .value_or_die();
  };
  for (int i = 0; i < 2; ++i) {
    const std::string id = "bin-" + std::to_string(i);
    auto r = send(sealed(id, 0.5f + static_cast<float>(i)));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers.get_or("Content-Type", ""), protocol::kEnvelopeMediaType);
    EXPECT_EQ(r.headers.get_or(protocol::kRunHeader, ""), i == 0 ? "cold" : "warm");
    auto timing = nlohmann::json::parse(r.headers.get_or(protocol::kTimingHeader, ""));
    for (const char* k : {"key_fetch", "model_fetch", "decrypt", "compile", "inference", "encrypt", "total"}) {
      EXPECT_TRUE(timing.contains(k)) << k;
    }
    EXPECT_EQ(nlohmann::json::parse(r.headers.get_or(protocol::kInstanceHeader, "{}"))["instance_id"], app_->instance_id());
    EXPECT_EQ(protocol::envelope_encoding(r.body), protocol::EnvelopeEncoding::kBinary);
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
  // Model missing from the store although the KeyService knows it (the refusal above is
  // remembered for a few seconds, so another model).
  keys_.set_model_key("o/secret2", fresh_key());
  keys_.grant("o/secret2", kUser, request_key_);
  EXPECT_EQ(post("/v1/infer", request_body("o/secret2", "r", 1)).status, 404);

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
  // The failed load is remembered for ModelCache's failure backoff (2 s), then retried.
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_EQ(post("/v1/infer", request_body("o/mlp", "r2", 1)).status, 200);

  keys_.down = true;
  auto down = post("/v1/infer", request_body("o/linear", "r3", 1));
  EXPECT_EQ(down.status, 503) << down.body;
  keys_.down = false;
  EXPECT_EQ(post("/v1/infer", request_body("o/linear", "r4", 1)).status, 200);
}

// /run is reached by whoever reaches the port: its cleartext errors show what net's shape shows
// (code, reason, public message) and never an internal failure's text (here the store path).
TEST_F(WorkerAppTest, OpenWhiskErrorsShowNoInternalText) {
  start(false);
  ASSERT_EQ(post("/init", init_body()).status, 200);
  const auto path = store_.path() / "o/mlp.moss";
  auto corrupted = read_file(path, 1 << 20).value_or_die();
  corrupted[corrupted.size() / 2] ^= 0x40;
  write_file(path, corrupted).check();
  auto run = [&](const std::string& value) {
    return post("/run", "{\"value\":" + value + "}");
  };
  // A damaged model file is answered inside the sealed envelope (HTTP 200); should it ever become a
  // cleartext error, it must be the generic internal error, never the store's text or path.
  auto r = run(request_body("o/mlp", "r1", 1));
  if (r.status != 200) {
    EXPECT_EQ(r.status, 500) << r.body;
    EXPECT_EQ(nlohmann::json::parse(r.body),
              (nlohmann::json{{"error", "data-loss (internal): internal error"}}));
  }
  EXPECT_EQ(r.body.find(store_.path().string()), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("mlp.moss"), std::string::npos) << r.body;

  auto bad = run(R"({"model_id":"o/linear"})");
  EXPECT_EQ(bad.status, 400) << bad.body;
  const std::string text = nlohmann::json::parse(bad.body)["error"].get<std::string>();
  EXPECT_EQ(text.rfind("invalid-argument", 0), 0u) << text;
}

// A service factory (model store, engine) failing during /init is answered 500 with the generic
// internal error only: its text, here a path under /secret, stays in the log. The worker stays
// unconfigured and a later /init may succeed.
TEST_F(WorkerAppTest, InitFactoryFailureShowsOnlyInternalError) {
  start(false);
  factory_failure_ = internal_error("cannot map /secret/models/o/linear.moss: permission denied");
  auto r = post("/init", init_body());
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_EQ(r.body.find("/secret"), std::string::npos) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body),
            (nlohmann::json{{"error", "internal (internal): internal error"}}));
  EXPECT_FALSE(app_->configured());
  factory_failure_.reset();
  EXPECT_EQ(post("/init", init_body()).status, 200);
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


// Captures what the worker's component loggers write (every level by default) while alive.
class LogCapture : public test_support::LogCapture {
 public:
  explicit LogCapture(const char* level = "trace")
      : test_support::LogCapture(level, {"worker", "engine", "net"}) {}
};

// A model whose Gather index is the user's input: out of range, the engine's error quotes it.
std::vector<uint8_t> gather_model() {
  engine::testing::ModelBuilder b(13);
  b.init_f("table", {3}, {10, 20, 30});
  b.input("secret_token_ids", onnx::TensorProto::INT64, {1}).output("y");
  b.node("Gather", {"table", "secret_token_ids"}, {"y"}, "lookup");
  return b.bytes();
}

class WorkerHardeningTest : public WorkerAppTest {
 protected:
  void publish_bytes(const std::string& model_id, const std::vector<uint8_t>& plain, const SecretBytes& key) {
    auto enc = crypto::encrypt_model(key.span(), model_id, plain).value_or_die();
    auto path = store_.path() / (model_id + ".moss");
    std::filesystem::create_directories(path.parent_path());
    write_file(path, enc).check();
    keys_.set_model_key(model_id, key);
    keys_.grant(model_id, kUser, request_key_);
  }
  std::string sealed(const std::string& model, const std::string& request_id, const TensorBundle& in,
                     protocol::EnvelopeEncoding enc, const std::string& user = kUser,
                     const SecretBytes* key = nullptr) {
    auto bytes = write_safetensors(in).value_or_die();
    return crypto::seal_envelope((key ? *key : request_key_).span(),
                                 {model, user, request_id, protocol::Direction::kRequest}, bytes, {}, enc)
        .value_or_die();
  }
  net::Response send_binary(std::string body) {
    auto c = client();
    return c.request(net::Request::make("POST", "/v1/infer", std::move(body), protocol::kEnvelopeMediaType))
        .value_or_die();
  }
  std::string metrics() { return client().get("/metrics").value_or_die().body; }
};

// Finding 1: an engine error quoting request data (the index, the input's name) never leaves the
// worker in cleartext nor reaches its log; the user opens the sealed error and reads it.
TEST_F(WorkerHardeningTest, EngineErrorIsSealedForTheUserOnly) {
  start(true);
  publish_bytes("o/gather", gather_model(), fresh_key());
  const std::string secret = "987654321";
  const TensorBundle in = one_input("secret_token_ids", Tensor::from_vector<int64_t>({1}, {987654321}));
  LogCapture log;
  auto check_clear = [&](const net::Response& r) {
    std::string clear = r.body;
    for (const auto& [k, v] : r.headers.fields()) clear += k + ": " + v + "\n";
    EXPECT_EQ(clear.find(secret), std::string::npos) << clear;
    EXPECT_EQ(clear.find("secret_token_ids"), std::string::npos) << clear;
    EXPECT_EQ(clear.find("lookup"), std::string::npos) << clear;
  };
  const protocol::EnvelopeHeader json_header{"o/gather", kUser, "g-json", protocol::Direction::kRequest};
  const protocol::EnvelopeHeader bin_header{"o/gather", kUser, "g-bin", protocol::Direction::kRequest};

  // JSON wire.
  auto j = post("/v1/infer", nlohmann::json{{"model_id", "o/gather"},
                                            {"envelope", sealed("o/gather", "g-json", in, protocol::EnvelopeEncoding::kJson)}}
                                 .dump());
  EXPECT_EQ(j.status, 400) << j.body;
  check_clear(j);
  auto jb = nlohmann::json::parse(j.body);
  EXPECT_EQ(jb["error"]["category"], "bad-input");
  EXPECT_EQ(jb["error"]["code"], "invalid-argument");
  auto opened = client::open_infer_response(request_key_.span(), json_header, j);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(opened.status().message().find(secret), std::string::npos) << opened.status().to_string();
  EXPECT_NE(opened.status().message().find("bad-input"), std::string::npos) << opened.status().to_string();

  // Binary wire.
  auto b = send_binary(sealed("o/gather", "g-bin", in, protocol::EnvelopeEncoding::kBinary));
  EXPECT_EQ(b.status, 400);
  EXPECT_EQ(b.headers.get_or(protocol::kErrorCategoryHeader, ""), "bad-input");
  check_clear(b);
  opened = client::open_infer_response(request_key_.span(), bin_header, b);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find(secret), std::string::npos) << opened.status().to_string();

  // Wrong input name: the error names the tensor, sealed too.
  auto named = post("/v1/infer", nlohmann::json{{"model_id", "o/gather"},
                                                {"envelope", sealed("o/gather", "g-name",
                                                                    one_input("secret_token_ids_typo",
                                                                              Tensor::from_vector<int64_t>({1}, {1})),
                                                                    protocol::EnvelopeEncoding::kJson)}}
                                     .dump());
  EXPECT_EQ(named.status, 400);
  EXPECT_EQ(named.body.find("secret_token_ids"), std::string::npos) << named.body;

  const std::string logged = log.text();
  EXPECT_EQ(logged.find(secret), std::string::npos) << logged;
  EXPECT_EQ(logged.find("secret_token_ids"), std::string::npos) << logged;
  EXPECT_NE(logged.find("g-json"), std::string::npos) << logged;  // the request id is logged
  EXPECT_NE(metrics().find("moss_worker_sealed_errors_total{category=\"bad-input\"} 3"), std::string::npos);
}

// A model the engine refuses at compile: the engine's error names the node and its operator.
std::vector<uint8_t> uncompilable_model() {
  engine::testing::ModelBuilder b(13);
  b.input("x", onnx::TensorProto::FLOAT, {1, 8}).output("y");
  b.node("SecretOperator", {"x"}, {"y"}, "secret_layer_17");
  return b.bytes();
}

// A model that does not compile: the detail (the model's internals) is sealed for the requester;
// the cleartext answer carries the category and code, the log those and the reason only.
TEST_F(WorkerHardeningTest, ModelThatDoesNotCompileIsAnsweredWithItsDetailSealed) {
  start(true);
  publish_bytes("o/broken", uncompilable_model(), fresh_key());
  LogCapture log;
  auto r = post("/v1/infer", request_body("o/broken", "nc-1", 1.0f));
  EXPECT_EQ(r.status, 501) << r.body;
  std::string clear = r.body;
  for (const auto& [k, v] : r.headers.fields()) clear += k + ": " + v + "\n";
  for (const char* detail : {"secret_layer_17", "SecretOperator", "does not compile"}) {
    EXPECT_EQ(clear.find(detail), std::string::npos) << clear;
  }
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["error"]["category"], "model-unavailable");
  EXPECT_EQ(j["error"]["code"], "unimplemented");
  auto opened = client::open_infer_response(
      request_key_.span(), {"o/broken", kUser, "nc-1", protocol::Direction::kRequest}, r);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), ErrorCode::kUnimplemented);
  EXPECT_NE(opened.status().message().find("does not compile"), std::string::npos) << opened.status().to_string();
  EXPECT_NE(opened.status().message().find("SecretOperator"), std::string::npos) << opened.status().to_string();

  const std::string logged = log.text();
  EXPECT_NE(logged.find("reason=model-does-not-compile"), std::string::npos) << logged;
  EXPECT_NE(logged.find("nc-1"), std::string::npos) << logged;
  for (const char* detail : {"secret_layer_17", "SecretOperator", "does not compile"}) {
    EXPECT_EQ(logged.find(detail), std::string::npos) << logged;
  }
}

// Finding 1 on /run: the OpenWhisk error shape carries the category and the sealed envelope.
TEST_F(WorkerHardeningTest, RunAnswersSealedErrorInOpenWhiskShape) {
  start(false);
  ASSERT_EQ(post("/init", init_body()).status, 200);
  publish_bytes("o/gather", gather_model(), fresh_key());
  const TensorBundle in = one_input("secret_token_ids", Tensor::from_vector<int64_t>({1}, {987654321}));
  auto r = post("/run", nlohmann::json{{"value", {{"model_id", "o/gather"},
                                                  {"envelope", sealed("o/gather", "run-1", in,
                                                                      protocol::EnvelopeEncoding::kJson)}}}}
                            .dump());
  // 200 with everything inside `error`: OpenWhisk keeps only that field (an application error).
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.find("987654321"), std::string::npos) << r.body;
  auto j = nlohmann::json::parse(r.body);
  ASSERT_TRUE(j["error"].is_object()) << r.body;
  EXPECT_EQ(j.size(), 1u) << r.body;
  EXPECT_EQ(j["error"]["category"], "bad-input");
  EXPECT_EQ(j["error"]["code"], "invalid-argument");
  EXPECT_EQ(j["error"]["message"], protocol::sealed_failure_message("bad-input"));
  auto sealed_error = net::Response::json(400, nlohmann::json{{"envelope", j["error"]["envelope"]}}.dump());
  auto opened = client::open_infer_response(request_key_.span(),
                                            {"o/gather", kUser, "run-1", protocol::Direction::kRequest},
                                            sealed_error);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("987654321"), std::string::npos);
}

// Finding 3: after the owner re-keys a model (new key, new file), a warm worker serves the new
// model once the key cache expires, never the old one again.
TEST_F(WorkerHardeningTest, RekeyedModelIsServedAfterKeyTtl) {
  start(true, {{"key_ttl_s", "1"}});
  auto before = post("/v1/infer", request_body("o/linear", "k1", 1.0f));
  ASSERT_EQ(before.status, 200);
  expect_correct(nlohmann::json::parse(before.body), "o/linear", "linear", "k1", 1.0f);
  // Deleted and re-created under a new key, with another model in the file.
  publish(store_.path(), keys_, "o/linear", "mlp");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  for (int i = 0; i < 3; ++i) {
    const std::string id = fmt::format("k2-{}", i);
    auto after = post("/v1/infer", request_body("o/linear", id, 2.0f));
    ASSERT_EQ(after.status, 200) << after.body;
    expect_correct(nlohmann::json::parse(after.body), "o/linear", "mlp", id, 2.0f);
  }
  auto status = nlohmann::json::parse(client().get("/v1/status").value_or_die().body);
  EXPECT_EQ(status["models"].size(), 1u);  // the old copy was dropped
}

// Finding 5: junk naming a victim user costs a bounded number of KeyService calls (malformed
// envelopes none at all), and another user's valid requests keep succeeding meanwhile.
TEST_F(WorkerHardeningTest, JunkNamingAVictimIsBoundedAtTheKeyService) {
  start(true, {{"max_concurrency", "64"}});
  const std::string victim = "fedcba9876543210fedcba9876543210";
  const TensorBundle in = one_input("x", input_tensor(1));
  // Malformed: a well-formed header over a ciphertext shorter than a tag.
  std::string broken = sealed("o/linear", "j", in, protocol::EnvelopeEncoding::kBinary, victim);
  broken.resize(69 + 5);  // header (magic 8, version, direction, three ids) 69 bytes, nonce cut short
  const int calls_before = keys_.calls.load();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(send_binary(broken).status, 400);
  EXPECT_EQ(keys_.calls.load(), calls_before);

  std::atomic<bool> stop{false};
  std::atomic<int> good_ok{0}, good_total{0};
  std::thread good([&] {
    for (int i = 0; !stop; ++i) {
      ++good_total;
      if (post("/v1/infer", request_body("o/linear", fmt::format("good-{}", i), 1.0f)).status == 200) ++good_ok;
    }
  });
  const auto junk_start = std::chrono::steady_clock::now();
  std::vector<std::thread> junk;
  for (int t = 0; t < 3; ++t) {
    junk.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        // Well formed, under a key nobody registered, for models the victim has no grant on.
        SecretBytes k = fresh_key();
        const std::string model = i % 2 ? "o/linear" : fmt::format("o/absent{}", t * 100 + i);
        auto r = send_binary(sealed(model, fmt::format("j{}", i), in, protocol::EnvelopeEncoding::kBinary, victim, &k));
        EXPECT_NE(r.status, 200);
      }
    });
  }
  for (auto& t : junk) t.join();
  stop = true;
  good.join();
  // 300 junk requests: at most the per-user burst (10) plus one refill a second reach the
  // KeyService, plus the good user's single release.
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - junk_start);
  EXPECT_LE(keys_.calls.load() - calls_before, 10 + seconds.count() + 2) << keys_.calls.load();
  EXPECT_GT(good_total.load(), 0);
  EXPECT_EQ(good_ok.load(), good_total.load());
}

// Finding 7: /init cannot change a worker that flags or the environment configured; OpenWhisk's
// own /init (no settings) only marks it initialized, once.
TEST_F(WorkerHardeningTest, InitRefusedWhenConfiguredAtStart) {
  start(true);
  auto other = nlohmann::json::parse(init_body());
  other["value"]["model_store"] = "/elsewhere";
  auto r = post("/init", other.dump());
  EXPECT_EQ(r.status, 403) << r.body;
  auto status = nlohmann::json::parse(client().get("/v1/status").value_or_die().body);
  EXPECT_EQ(status["initialized"], false);
  EXPECT_EQ(post("/init", R"({"value":{"name":"moss","main":"main"}})").status, 200);
  EXPECT_EQ(post("/init", R"({"value":{"name":"moss","main":"main"}})").status, 403);
  // Still serving from the store it was started with.
  EXPECT_EQ(post("/v1/infer", request_body("o/linear", "after-init", 1.0f)).status, 200);
}

// Finding 7: /init may not set how the worker proves itself or whom it trusts, and never names a
// file for it to create; a refused /init leaves the worker unconfigured and /init still open.
TEST_F(WorkerHardeningTest, InitRefusesFieldsBeyondItsOwn) {
  start(false);
  const auto planted = store_.path() / "planted" / "dir" / "sim.key";
  for (const auto& [name, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"sim_key_file", planted.string()},
           {"allow_simulated", true},
           {"tee", "sim"},
           {"sim_identity", "evil"},
           {"port", 1}}) {
    auto body = nlohmann::json::parse(init_body());
    body["value"][name] = value;
    auto r = post("/init", body.dump());
    EXPECT_EQ(r.status, 403) << name << ": " << r.body;
  }
  EXPECT_FALSE(std::filesystem::exists(planted.parent_path().parent_path()));
  auto unknown = nlohmann::json::parse(init_body());
  unknown["value"]["no_such_setting"] = 1;
  EXPECT_EQ(post("/init", unknown.dump()).status, 400);
  EXPECT_FALSE(app_->configured());
  EXPECT_EQ(post("/init", init_body()).status, 200);
  EXPECT_EQ(post("/init", init_body()).status, 403);
}

// Finding 9: an input whose shape's element count overflows is the caller's error (400), not a
// capacity refusal (429).
TEST_F(WorkerHardeningTest, ShapeOverflowIsBadInput) {
  start(true);
  std::string header = R"({"x":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,0]}})";
  std::vector<uint8_t> bytes(8);
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(header.size() >> (8 * i));
  bytes.insert(bytes.end(), header.begin(), header.end());
  auto env = crypto::seal_envelope(request_key_.span(), {"o/linear", kUser, "ovf", protocol::Direction::kRequest}, bytes)
                 .value_or_die();
  auto r = post("/v1/infer", nlohmann::json{{"model_id", "o/linear"}, {"envelope", env}}.dump());
  EXPECT_EQ(r.status, 400) << r.body;
}

// Finding 9: a replayed request envelope is detected (within the key-cache window) and not run
// again; the answer is sealed like any other.
TEST_F(WorkerHardeningTest, ReplayedEnvelopeIsRefused) {
  start(true);
  const std::string body = request_body("o/linear", "once", 1.0f);
  auto first = post("/v1/infer", body);
  ASSERT_EQ(first.status, 200);
  auto replay = post("/v1/infer", body);
  EXPECT_EQ(replay.status, 409) << replay.body;
  EXPECT_EQ(nlohmann::json::parse(replay.body)["error"]["category"], "replayed");
  const std::string bin = sealed("o/linear", "once-bin", one_input("x", input_tensor(1)), protocol::EnvelopeEncoding::kBinary);
  EXPECT_EQ(send_binary(bin).status, 200);
  auto bin_replay = send_binary(bin);
  EXPECT_EQ(bin_replay.status, 409);
  EXPECT_EQ(bin_replay.headers.get_or(protocol::kErrorCategoryHeader, ""), "replayed");
  // A request that failed before it ran may be sent again as it is.
  const std::string bad = request_body("o/linear", "retry", 1.0f, "nope");
  EXPECT_EQ(post("/v1/infer", bad).status, 400);
  EXPECT_EQ(post("/v1/infer", bad).status, 400);
}

// Finding 11: a flood of failing requests writes a bounded number of log lines; the metrics count
// every one.
TEST_F(WorkerHardeningTest, FailureFloodLogsBoundedLinesAndCountsAll) {
  start(true);
  ASSERT_EQ(post("/v1/infer", request_body("o/linear", "warm", 1.0f)).status, 200);
  LogCapture log("info");
  const int kFailures = 300;
  for (int i = 0; i < kFailures / 3; ++i) {
    EXPECT_EQ(post("/v1/infer", request_body("o/linear", fmt::format("bad-{}", i), 1.0f, "nope")).status, 400);
    EXPECT_EQ(post("/v1/infer", "{").status, 400);
    EXPECT_EQ(send_binary("junk").status, 400);
  }
  EXPECT_LE(log.lines(), 12u) << log.text();
  const std::string m = metrics();
  EXPECT_NE(m.find("moss_worker_requests_total{endpoint=\"infer\",outcome=\"error\"} 300"), std::string::npos) << m;
  EXPECT_NE(m.find("moss_worker_log_lines_suppressed_total"), std::string::npos);
}

// Finding 12: a corrupted model file is not re-read and re-decrypted for every request: the
// failure is remembered briefly; once it passes, the restored file loads.
TEST_F(WorkerHardeningTest, FailedLoadIsRememberedNotRetriedPerRequest) {
  start(true);
  const auto path = store_.path() / "o/mlp.moss";
  auto original = read_file(path, 1 << 20).value_or_die();
  auto corrupted = original;
  corrupted[corrupted.size() / 2] ^= 0x40;
  write_file(path, corrupted).check();
  for (int i = 0; i < 5; ++i) {
    auto r = post("/v1/infer", request_body("o/mlp", fmt::format("c{}", i), 1));
    EXPECT_EQ(r.status, 500) << r.body;
  }
  const std::string m = metrics();
  EXPECT_NE(m.find("moss_worker_model_load_failures_total 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("moss_worker_model_load_failures_remembered_total 4\n"), std::string::npos) << m;
  EXPECT_NE(m.find("moss_worker_model_loads_total 0\n"), std::string::npos) << m;
  write_file(path, original).check();
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  auto ok = post("/v1/infer", request_body("o/mlp", "c-ok", 1));
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(nlohmann::json::parse(ok.body)["run"], "cold");  // the failed load was no load
}

}  // namespace
}  // namespace moss::worker
