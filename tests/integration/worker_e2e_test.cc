// The worker end to end with real processes on loopback (simulated TEE): moss-keyservice,
// moss-worker and the moss CLI. The owner encrypts, publishes, uploads the key and grants the
// user for the worker's measurement; the user registers a request key and runs `moss infer`.
// Checks: bit-for-bit equality with `moss model run`, the OpenWhisk protocol on the real binary,
// refusals (ungranted, revoked after the key lifetime, tampered, replayed response), 16
// concurrent requests over 2 models, KeyService killed and restarted, corrupted model file.
#include "attest/simulated.h"
#include "client/client_config.h"
#include "client/infer_client.h"
#include "client/request_key_file.h"
#include "common/encoding.h"
#include "common/file_util.h"
#include "common/npy.h"
#include "common/safetensors.h"
#include "crypto/envelope.h"
#include "crypto/identity.h"
#include "engine/runtime/compiled_model.h"
#include "engine/runtime/execution_context.h"
#include "net/client.h"
#include "support/service_process.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

// GCC 12 reports a false -Wrestrict inside std::string concatenation here (GCC bug 105329).
#pragma GCC diagnostic ignored "-Wrestrict"

namespace moss {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path bin_dir() {
  const char* b = std::getenv("MOSS_BIN_DIR");
  return b ? b : "";
}
fs::path source_dir() {
  const char* s = std::getenv("MOSS_SOURCE_DIR");
  return s ? s : MOSS_WORKER_E2E_SOURCE_DIR;
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

// Runs a shell command line, capturing stdout and stderr.
CommandResult run(const std::string& command) {
  CommandResult r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

using Service = test_support::ServiceProcess;

Service spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
              const fs::path& log) {
  Service s = test_support::spawn_service(argv, env, log);
  EXPECT_NE(s.port, 0) << "no listening line from " << argv[0] << ": '" << s.first_line << "'";
  return s;
}

json simulated_policy(const std::string& measurement) {
  return {{"version", 1},
          {"name", "worker e2e test (simulated TEE)"},
          {"allow_simulated", true},
          {"measurements", json::array({{{"tee", "simulated"}, {"measurement", measurement}}})}};
}

std::string measure(const std::string& binary, const std::string& identity) {
  return hex_encode(attest::simulated_measurement(bin_dir() / binary, identity).value_or_die());
}

class WorkerE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moss-worker-e2e-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    moss_ = (bin_dir() / "moss").string();
    sim_key_ = dir_ / "sim.key";
    attest::SimPlatformKey::load_or_create(sim_key_).value_or_die();
    worker_m_ = measure("moss-worker", "moss-worker");
    const std::string ks_m = measure("moss-keyservice", "moss-keyservice");
    write_text_file(dir_ / "worker-policy.json", simulated_policy(worker_m_).dump()).check();
    write_text_file(dir_ / "keyservice-policy.json", simulated_policy(ks_m).dump()).check();
    fs::create_directories(dir_ / "store");
    start_keyservice("127.0.0.1:0");

    owner_ = make_principal("owner");
    user_ = make_principal("user");
    for (const char* name : {"linear", "mlp"}) {
      const std::string model = owner_ + "/" + name;
      fs::create_directories(dir_ / "store" / owner_);
      ok(moss("model encrypt --in " + quote(model_path(name)) + " --out " +
              quote((dir_ / "store" / owner_ / (std::string(name) + ".moss")).string()) + " --model-id " + model +
              " --key-out " + quote((dir_ / "owner" / (std::string(name) + ".key")).string())));
      ok(moss("model upload-key --config " + cfg("owner") + " --key " +
              quote((dir_ / "owner" / (std::string(name) + ".key")).string())));
      ok(moss("model grant --config " + cfg("owner") + " --model " + model + " --user " + user_ +
              " --measurement " + worker_m_));
      ok(moss("request-key add --config " + cfg("user") + " --model " + model + " --measurement " + worker_m_));
    }
  }
  void TearDown() override {
    worker_.stop(SIGKILL);
    keyservice_.stop(SIGKILL);
    if (!HasFailure()) fs::remove_all(dir_);
  }

  void start_keyservice(const std::string& listen) {
    keyservice_ = spawn({(bin_dir() / "moss-keyservice").string(), "--listen", listen, "--state-dir",
                         (dir_ / "ks").string(), "--tee", "sim", "--sim-key-file", sim_key_.string(),
                         "--worker-policy", (dir_ / "worker-policy.json").string(), "--allow-simulated"},
                        {}, dir_ / "keyservice.log");
  }
  // The worker, configured by environment unless `configured` is false (then /init does it).
  void start_worker(bool configured, int key_ttl_s = 300) {
    std::map<std::string, std::string> env = {{"MOSS_WORKER_TEE", "sim"},
                                              {"MOSS_WORKER_SIM_KEY_FILE", sim_key_.string()},
                                              {"MOSS_WORKER_ALLOW_SIMULATED", "true"},
                                              {"MOSS_WORKER_KEY_TTL_S", std::to_string(key_ttl_s)},
                                              {"MOSS_WORKER_MAX_CONCURRENCY", "16"},
                                              {"MOSS_WORKER_MEMORY_BUDGET_MB", "256"}};
    if (configured) {
      for (const auto& [k, v] : worker_settings()) env["MOSS_WORKER_" + k] = v;
    }
    worker_ = spawn({(bin_dir() / "moss-worker").string(), "--host", "127.0.0.1", "--port", "0",
                     "--log-level", "info"},
                    env, dir_ / "worker.log");
  }
  std::map<std::string, std::string> worker_settings() {
    return {{"KEYSERVICE_URL", keyservice_.url},
            {"KEYSERVICE_POLICY", (dir_ / "keyservice-policy.json").string()},
            {"MODEL_STORE", (dir_ / "store").string()}};
  }

  std::string make_principal(const std::string& who) {
    auto r = moss("identity new --out " + quote((dir_ / who).string()));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const std::string id = crypto::Identity::load(dir_ / who / "identity.pem").value_or_die().principal_id();
    EXPECT_NE(r.output.find(id), std::string::npos) << r.output;
    json c = {{"keyservice_url", keyservice_.url},
              {"keyservice_policy", (dir_ / "keyservice-policy.json").string()},
              {"identity", "identity.pem"},
              {"state_dir", "."},
              {"allow_simulated", true},
              {"sim_key_file", sim_key_.string()}};
    write_text_file(dir_ / who / "client.json", c.dump()).check();
    ok(moss("user register --config " + cfg(who)));
    return id;
  }
  std::string cfg(const std::string& who) { return quote((dir_ / who / "client.json").string()); }
  std::string model_path(const std::string& name) {
    return (source_dir() / "tests/data/worker" / (name + ".onnx")).string();
  }
  CommandResult moss(const std::string& args) { return run(quote(moss_) + " " + args); }
  void ok(const CommandResult& r) { ASSERT_EQ(r.exit_code, 0) << r.output; }

  std::string endpoint() { return "http://127.0.0.1:" + std::to_string(worker_.port); }

  // One request through the client library (what `moss infer` runs).
  Result<client::InferOutcome> infer(const std::string& name, float seed, const std::string& who = "user") {
    client::InferOptions o;
    o.config = dir_ / who / "client.json";
    o.model_id = owner_ + "/" + name;
    o.endpoint = endpoint();
    TensorBundle in;
    in.add("x", input(seed)).check();
    return client::infer(o, in);
  }
  static Tensor input(float seed) {
    std::vector<float> v(8);
    for (int i = 0; i < 8; ++i) v[i] = seed - 0.5f * static_cast<float>(i);
    return Tensor::from_vector<float>({1, 8}, v);
  }
  Tensor reference(const std::string& name, float seed) {
    auto bytes = read_file(model_path(name), 1 << 20).value_or_die();
    auto model = engine::CompiledModel::compile(bytes).value_or_die();
    engine::ExecutionContext ctx(model);
    std::vector<NamedTensor> in = {{"x", input(seed)}};
    return std::move(ctx.run(in)).value_or_die().at(0).tensor;
  }
  net::Response post(const std::string& path, const std::string& body) {
    net::ClientOptions o;
    o.port = worker_.port;
    net::Client c(o);
    return c.post(path, body).value_or_die();
  }
  // A C3 request sealed by hand with the user's request key (for protocol-level tests).
  std::string sealed_request(const std::string& name, const std::string& request_id, float seed) {
    auto config = client::load_client_config(dir_ / "user" / "client.json").value_or_die();
    auto rk = client::read_request_key_file(config, owner_ + "/" + name).value_or_die();
    TensorBundle in;
    in.add("x", input(seed)).check();
    auto env = crypto::seal_envelope(rk.key.span(),
                                     {owner_ + "/" + name, user_, request_id, protocol::Direction::kRequest},
                                     write_safetensors(in).value_or_die())
                   .value_or_die();
    return json{{"model_id", owner_ + "/" + name}, {"envelope", env}}.dump();
  }

  fs::path dir_, sim_key_;
  std::string moss_, worker_m_, owner_, user_;
  Service keyservice_, worker_;
};

// The user's `moss infer` output equals `moss model run` on the plaintext model, bit for bit.
TEST_F(WorkerE2ETest, MossInferEqualsModelRunBitForBit) {
  start_worker(true);
  const std::string in = (dir_ / "x.npy").string();
  write_npy_file(in, input(0.75f)).check();
  auto r = moss("infer --config " + cfg("user") + " --model " + owner_ + "/linear --input x=" + quote(in) +
                " --output-dir " + quote((dir_ / "out").string()) + " --endpoint " + endpoint() + " --verbose");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("run: cold"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("key_fetch"), std::string::npos) << r.output;
  ok(moss("model run --model " + quote(model_path("linear")) + " --input x=" + quote(in) + " --output-dir " +
          quote((dir_ / "ref").string())));
  auto got = read_file(dir_ / "out" / "y.npy", 1 << 20).value_or_die();
  auto want = read_file(dir_ / "ref" / "y.npy", 1 << 20).value_or_die();
  EXPECT_EQ(got, want);
  // Decrypted outputs are the user's: 0600, like `moss model decrypt`.
  EXPECT_EQ(std::filesystem::status(dir_ / "out" / "y.npy").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  // An error after the worker opened the request is sealed: `moss infer` opens it, prints the
  // category and the detail (here the input name the model does not take), and exits non-zero.
  for (const char* wire : {"binary", "json"}) {
    auto wrong = moss("infer --config " + cfg("user") + " --model " + owner_ + "/linear --input not_an_input=" +
                      quote(in) + " --output-dir " + quote((dir_ / "out-err").string()) + " --endpoint " +
                      endpoint() + " --wire " + wire);
    EXPECT_NE(wrong.exit_code, 0) << wrong.output;
    EXPECT_NE(wrong.output.find("bad-input"), std::string::npos) << wrong.output;
    EXPECT_NE(wrong.output.find("not_an_input"), std::string::npos) << wrong.output;
  }
  auto warm = moss("infer --config " + cfg("user") + " --model " + owner_ + "/linear --input x=" + quote(in) +
                   " --output-dir " + quote((dir_ / "out2").string()) + " --endpoint " + endpoint() + " -v");
  ASSERT_EQ(warm.exit_code, 0) << warm.output;
  EXPECT_NE(warm.output.find("run: warm"), std::string::npos) << warm.output;
  // `moss infer` sends a worker a binary envelope body; the JSON request gives the same bytes.
  auto as_json = moss("infer --config " + cfg("user") + " --model " + owner_ + "/linear --input x=" + quote(in) +
                      " --output-dir " + quote((dir_ / "out3").string()) + " --endpoint " + endpoint() +
                      " --wire json --save-request " + quote((dir_ / "req.json").string()));
  ASSERT_EQ(as_json.exit_code, 0) << as_json.output;
  EXPECT_EQ(read_file(dir_ / "out3" / "y.npy", 1 << 20).value_or_die(), want);
  EXPECT_EQ(read_file(dir_ / "req.json", 1 << 20).value_or_die().at(0), '{');
  auto bad_wire = moss("infer --config " + cfg("user") + " --model " + owner_ + "/linear --input x=" + quote(in) +
                       " --output-dir " + quote((dir_ / "out4").string()) + " --endpoint " + endpoint() +
                       " --wire xml");
  EXPECT_NE(bad_wire.exit_code, 0);
}

// OpenWhisk protocol on the real binary: /run before /init, /init with the configuration in its
// value, a second /init refused, concurrent /run calls, error shapes.
TEST_F(WorkerE2ETest, OpenWhiskProtocol) {
  start_worker(false);
  auto early = post("/run", json{{"value", json::parse(sealed_request("linear", "r0", 1))}}.dump());
  EXPECT_EQ(early.status, 500);
  EXPECT_TRUE(json::parse(early.body)["error"].is_string());
  json value = {{"name", "moss"}, {"main", "main"}};
  for (const auto& [k, v] : worker_settings()) {
    std::string name = k;
    for (char& c : name) c = static_cast<char>(std::tolower(c));
    value[name] = v;
  }
  auto init = post("/init", json{{"value", value}}.dump());
  ASSERT_EQ(init.status, 200) << init.body;
  auto again = post("/init", json{{"value", value}}.dump());
  EXPECT_EQ(again.status, 403);
  EXPECT_EQ(json::parse(again.body)["error"], "Cannot initialize the action more than once.");

  std::vector<std::thread> threads;
  std::vector<net::Response> out(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      std::string request_id = "r";
      request_id += std::to_string(i);
      json body;
      body["value"] = json::parse(sealed_request(i % 2 ? "mlp" : "linear", request_id, static_cast<float>(i)));
      body["activation_id"] = request_id;
      out[i] = post("/run", body.dump());
    });
  }
  for (auto& t : threads) t.join();
  auto config = client::load_client_config(dir_ / "user" / "client.json").value_or_die();
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(out[i].status, 200) << out[i].body;
    const std::string name = i % 2 ? "mlp" : "linear";
    auto rk = client::read_request_key_file(config, owner_ + "/" + name).value_or_die();
    auto opened = client::open_infer_response(
        rk.key.span(), {owner_ + "/" + name, user_, "r" + std::to_string(i), protocol::Direction::kRequest}, out[i]);
    ASSERT_TRUE(opened.ok()) << opened.status().to_string();
    EXPECT_TRUE(opened->outputs.find("y")->equals(reference(name, static_cast<float>(i))));
  }
  auto bad = post("/run", R"({"value":{"model_id":"x/y","envelope":"{"}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(json::parse(bad.body).size(), 1u);
}

// Refusals: an ungranted user; a revoked grant once the key lifetime has passed; a tampered
// envelope; a response replayed for another request.
TEST_F(WorkerE2ETest, Refusals) {
  start_worker(true, /*key_ttl_s=*/1);
  // A second user with a request key but no grant.
  const std::string other = make_principal("other");
  ok(moss("request-key add --config " + cfg("other") + " --model " + owner_ + "/linear --measurement " + worker_m_));
  auto refused = infer("linear", 1, "other");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kPermissionDenied) << refused.status().to_string();

  ASSERT_TRUE(infer("linear", 1).ok());
  ok(moss("model revoke --config " + cfg("owner") + " --model " + owner_ + "/linear --user " + user_ +
          " --measurement " + worker_m_));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto revoked = infer("linear", 1);
  ASSERT_FALSE(revoked.ok());
  EXPECT_EQ(revoked.status().code(), ErrorCode::kPermissionDenied) << revoked.status().to_string();

  // Tampered ciphertext.
  auto body = json::parse(sealed_request("mlp", "t1", 1));
  auto env = json::parse(body["envelope"].get<std::string>());
  std::string ct = env["ciphertext"];
  ct[5] = ct[5] == 'A' ? 'B' : 'A';
  env["ciphertext"] = ct;
  body["envelope"] = env.dump();
  EXPECT_EQ(post("/v1/infer", body.dump()).status, 401);

  // A genuine response, replayed as the answer to another request, does not open.
  auto first = post("/v1/infer", sealed_request("mlp", "req-A", 1));
  ASSERT_EQ(first.status, 200) << first.body;
  auto config = client::load_client_config(dir_ / "user" / "client.json").value_or_die();
  auto rk = client::read_request_key_file(config, owner_ + "/mlp").value_or_die();
  auto replay = client::open_infer_response(rk.key.span(),
                                            {owner_ + "/mlp", user_, "req-B", protocol::Direction::kRequest}, first);
  ASSERT_FALSE(replay.ok());
  EXPECT_EQ(replay.status().code(), ErrorCode::kUnauthenticated);
  EXPECT_TRUE(client::open_infer_response(rk.key.span(),
                                          {owner_ + "/mlp", user_, "req-A", protocol::Direction::kRequest}, first)
                  .ok());
}

// 16 concurrent requests over 2 models; every result correct.
TEST_F(WorkerE2ETest, SixteenConcurrentRequestsOverTwoModels) {
  start_worker(true);
  std::vector<std::thread> threads;
  std::vector<Result<client::InferOutcome>> results(16, Result<client::InferOutcome>(internal_error("not run")));
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] { results[i] = infer(i % 2 ? "mlp" : "linear", static_cast<float>(i)); });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status().to_string();
    EXPECT_TRUE(results[i]->outputs.find("y")->equals(reference(i % 2 ? "mlp" : "linear", static_cast<float>(i))));
  }
  net::ClientOptions o;
  o.port = worker_.port;
  net::Client c(o);
  auto status = json::parse(c.get("/v1/status").value_or_die().body);
  EXPECT_EQ(status["models"].size(), 2u);
}

// KeyService killed mid-run: requests needing keys fail cleanly (unavailable), then succeed once
// it is back, without restarting the worker. A corrupted model file: data-loss, then recovery.
TEST_F(WorkerE2ETest, KeyServiceRestartAndCorruptedModel) {
  start_worker(true, /*key_ttl_s=*/0);  // every request asks the KeyService
  ASSERT_TRUE(infer("linear", 1).ok());
  const std::string listen = "127.0.0.1:" + std::to_string(keyservice_.port);
  keyservice_.stop(SIGKILL);
  auto down = infer("linear", 2);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), ErrorCode::kUnavailable) << down.status().to_string();
  start_keyservice(listen);
  auto back = infer("linear", 3);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_TRUE(back->outputs.find("y")->equals(reference("linear", 3)));

  const fs::path file = dir_ / "store" / owner_ / "mlp.moss";
  auto original = read_file(file, 1 << 20).value_or_die();
  auto corrupted = original;
  corrupted[corrupted.size() - 20] ^= 0x01;
  write_file(file, corrupted).check();
  auto bad = infer("mlp", 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kDataLoss) << bad.status().to_string();
  // The detail was sealed for the user: the client opened it and shows its category.
  EXPECT_NE(bad.status().message().find("model-unavailable"), std::string::npos) << bad.status().to_string();
  write_file(file, original).check();
  // The failed load is remembered for 2 s (not re-read and re-decrypted per request), then retried.
  auto remembered = infer("mlp", 1);
  EXPECT_EQ(remembered.status().code(), ErrorCode::kDataLoss) << remembered.status().to_string();
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  auto good = infer("mlp", 1);
  ASSERT_TRUE(good.ok()) << good.status().to_string();
  EXPECT_TRUE(good->outputs.find("y")->equals(reference("mlp", 1)));
}

}  // namespace
}  // namespace moss
