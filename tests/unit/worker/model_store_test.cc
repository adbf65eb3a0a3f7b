// ModelStore over a directory and over HTTP, the HTTP one against a real file server on loopback:
// the same bytes from both, the same head (first bytes and size), every failure with its code
// (not-found, unavailable, oversize, invalid id), and a worker serving inference from an HTTP store.
#include "net/server.h"
#include "worker/inference_service.h"
#include "worker/model_store.h"
#include "worker_fixture.h"

#include <gtest/gtest.h>

#include <atomic>

namespace moss::worker {
namespace {

using namespace testing;

// Serves `root` under /models/, counting requests; /broken/ answers 500.
struct FileServer {
  explicit FileServer(std::filesystem::path root) : root_(std::move(root)) {
    net::ServerOptions o;
    o.max_body_bytes = 1024;
    server = net::Server::start(std::move(o), [this](const net::Request& r) {
                                  ++requests;
                                  if (r.path.starts_with("/broken/")) return net::Response::text(500, "oops");
                                  if (!r.path.starts_with("/models/") || r.path.find("..") != std::string::npos) {
                                    return net::Response::text(404, "no");
                                  }
                                  auto bytes = read_file(root_ / r.path.substr(8), 64 << 20);
                                  if (!bytes.ok()) return net::Response::text(404, "no");
                                  net::Response resp;
                                  resp.body.assign(bytes->begin(), bytes->end());
                                  resp.headers.set("Content-Type", "application/octet-stream");
                                  return resp;
                                }).value_or_die();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server->port()) + path;
  }
  std::filesystem::path root_;
  std::atomic<int> requests{0};
  net::ServerPtr server;
};

class ModelStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    publish(dir_.path(), *keys_, "owner/linear", "linear");
    // A multi-megabyte file, so the HTTP body takes the large-body path.
    big_.resize(3 << 20);
    for (size_t i = 0; i < big_.size(); ++i) big_[i] = static_cast<uint8_t>(i * 31 + (i >> 10));
    write_file(dir_.path() / "owner" / "big.moss", big_).check();
  }
  TempDir dir_;
  std::unique_ptr<MemoryKeySource> keys_ = std::make_unique<MemoryKeySource>();
  std::vector<uint8_t> big_;
};

TEST_F(ModelStoreTest, HttpStoreReturnsTheDirectoryStoresBytes) {
  FileServer files(dir_.path());
  auto local = make_model_store(dir_.path().string(), 64 << 20).value_or_die();
  // With and without a trailing slash on the base URL.
  for (const std::string& base : {files.url("/models"), files.url("/models/")}) {
    auto http = make_model_store(base, 64 << 20).value_or_die();
    EXPECT_EQ(http->describe(), base);
    for (const char* id : {"owner/linear", "owner/big"}) {
      auto a = local->fetch(id);
      auto b = http->fetch(id);
      ASSERT_TRUE(a.ok()) << a.status().to_string();
      ASSERT_TRUE(b.ok()) << b.status().to_string();
      EXPECT_EQ(*a, *b) << id;
    }
  }
  EXPECT_EQ(local->fetch("owner/big").value_or_die(), big_);
}

TEST_F(ModelStoreTest, HeadIsTheFilesFirstBytesAndItsSize) {
  FileServer files(dir_.path());
  auto local = make_model_store(dir_.path().string(), 64 << 20).value_or_die();
  auto http = make_model_store(files.url("/models"), 64 << 20).value_or_die();
  for (ModelStore* store : {local.get(), http.get()}) {
    auto head = store->fetch_head("owner/big", 100);
    ASSERT_TRUE(head.ok()) << head.status().to_string();
    EXPECT_EQ(head->size, big_.size());
    EXPECT_EQ(head->bytes, std::vector<uint8_t>(big_.begin(), big_.begin() + 100));
    const auto whole = store->fetch("owner/linear").value_or_die();
    auto all = store->fetch_head("owner/linear", 1 << 20).value_or_die();  // more than there is
    EXPECT_EQ(all.bytes, whole);
    EXPECT_EQ(all.size, whole.size());
    EXPECT_EQ(store->fetch_head("owner/missing", 100).status().code(), ErrorCode::kNotFound);
    EXPECT_EQ(store->fetch_head("../x", 100).status().code(), ErrorCode::kInvalidArgument);
  }
  auto small = make_model_store(dir_.path().string(), 1 << 20).value_or_die();
  EXPECT_EQ(small->fetch_head("owner/big", 100).status().code(), ErrorCode::kResourceExhausted);
}

TEST_F(ModelStoreTest, FailuresCarryTheirCodes) {
  FileServer files(dir_.path());
  auto http = make_model_store(files.url("/models"), 64 << 20).value_or_die();
  EXPECT_EQ(http->fetch("owner/missing").status().code(), ErrorCode::kNotFound);
  // An id that could leave the store is refused before any request is made.
  const int before = files.requests.load();
  EXPECT_EQ(http->fetch("../etc/passwd").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(http->fetch("owner/../../x").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(files.requests.load(), before);
  // A file over the size bound is refused, not truncated.
  auto small = make_model_store(files.url("/models"), 1 << 20).value_or_die();
  EXPECT_EQ(small->fetch("owner/big").status().code(), ErrorCode::kResourceExhausted);
  // A store that errors, and one that is not there.
  auto broken = make_model_store(files.url("/broken"), 64 << 20).value_or_die();
  EXPECT_EQ(broken->fetch("owner/linear").status().code(), ErrorCode::kUnavailable);
  const std::string gone = files.url("/models");
  files.server->stop(std::chrono::milliseconds(100));
  auto down = make_model_store(gone, 64 << 20).value_or_die();
  auto r = down->fetch("owner/linear");
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable) << r.status().to_string();

  auto local = make_model_store(dir_.path().string(), 64 << 20).value_or_die();
  EXPECT_EQ(local->fetch("owner/missing").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(local->fetch("../x").status().code(), ErrorCode::kInvalidArgument);
  auto nowhere = make_model_store((dir_.path() / "nowhere").string(), 64 << 20).value_or_die();
  EXPECT_EQ(nowhere->fetch("owner/linear").status().code(), ErrorCode::kUnavailable);
  EXPECT_FALSE(make_model_store("", 1).ok());
  EXPECT_FALSE(make_model_store("http://", 1).ok());
}

TEST_F(ModelStoreTest, WorkerServesInferenceFromAnHttpStore) {
  // The whole request path with the model fetched over HTTP: output equals the in-process run.
  FileServer files(dir_.path());
  SecretBytes request_key = fresh_key();
  keys_->grant("owner/linear", kUser, request_key);
  WorkerConfig config;
  config.model_store = files.url("/models");
  config.memory_budget_bytes = 256 << 20;
  Metrics metrics;
  InferenceService service(config, std::move(keys_),
                           make_model_store(config.model_store, 64 << 20).value_or_die(), metrics);
  auto envelope = seal_request(request_key, "owner/linear", kUser, "h-1", one_input("x", input_tensor(2.0f)));
  auto r = service.infer("owner/linear", envelope);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->kind, protocol::RunKind::kCold);
  EXPECT_GT(r->timing.model_fetch_ms, 0.0);
  auto out = open_response(request_key, "owner/linear", kUser, "h-1", r->envelope);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_TRUE(out->find("y")->equals(reference_output("linear", input_tensor(2.0f))));
}

}  // namespace
}  // namespace moss::worker
