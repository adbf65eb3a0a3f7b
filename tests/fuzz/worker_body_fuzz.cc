// libFuzzer target for the worker's request bodies (worker/worker_app.h), through its public
// handlers with real parts behind them: POST /init (the OpenWhisk init value and the layered
// configuration it updates) on a fresh, unconfigured app; POST /run (the C3 request in `value`)
// and POST /v1/infer (JSON or binary envelope body) on a configured app whose key source refuses
// every release and whose model store is empty. The first byte picks the endpoint. Nothing is
// written to disk: the service factory ignores the store location a fuzzed /init names.
#include "common/logging.h"
#include "crypto/envelope.h"
#include "worker/inference_service.h"
#include "worker/model_store.h"
#include "worker/released_keys.h"
#include "worker/worker_app.h"
#include "worker/worker_config.h"

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

namespace {

using namespace moss;
using namespace moss::worker;

class RefusingKeys : public KeySource {
 public:
  Result<ReleasedKeys> release(std::string_view, std::string_view) override {
    return permission_denied("fuzz: no grant");
  }
};

class EmptyStore : public ModelStore {
 public:
  Result<std::vector<uint8_t>> fetch(std::string_view model_id) override {
    return not_found("fuzz: no model {}", model_id);
  }
  std::string describe() const override { return "fuzz-empty"; }
};

std::map<std::string, std::string> complete_flags() {
  return {{"keyservice_url", "https://127.0.0.1:1"},
          {"keyservice_policy", R"({"version":1})"},
          {"model_store", "/nonexistent-fuzz-store"}};
}

std::unique_ptr<WorkerApp> make_app(const std::map<std::string, std::string>& flags) {
  auto settings = load_worker_settings("", flags, [](const std::string&) { return std::nullopt; });
  if (!settings.ok()) std::abort();
  return std::make_unique<WorkerApp>(
      std::move(settings).value(),
      [](const WorkerConfig& c, Metrics& m) -> Result<std::shared_ptr<InferenceService>> {
        return std::make_shared<InferenceService>(c, std::make_unique<RefusingKeys>(),
                                                  std::make_unique<EmptyStore>(), m);
      });
}

WorkerApp& configured_app() {
  static WorkerApp* app = [] {
    log::set_level("off");
    // Started unconfigured and configured by /init, as an OpenWhisk action is.
    auto a = make_app({});
    net::Request init;
    init.method = "POST";
    init.path = init.target = "/init";
    nlohmann::json value = {{"name", "moss"}, {"main", "main"}};
    for (const auto& [k, v] : complete_flags()) value[k] = v;
    init.body = nlohmann::json{{"value", value}}.dump();
    if (a->handle_init(init).status != 200) std::abort();
    return a.release();
  }();
  return *app;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  WorkerApp& app = configured_app();
  net::Request req;
  req.method = "POST";
  req.body.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  net::Response res;
  switch (data[0] % 4) {
    case 0: {
      auto fresh = make_app({});
      req.path = req.target = "/init";
      res = fresh->handle_init(req);
      break;
    }
    case 1:
      req.path = req.target = "/run";
      res = app.handle_run(req);
      break;
    case 2:
      req.path = req.target = "/v1/infer";
      res = app.handle_infer(req);
      break;
    default:
      req.path = req.target = "/v1/infer";
      req.headers.set("Content-Type", protocol::kEnvelopeMediaType);
      res = app.handle_infer(req);
      break;
  }
  // Nothing can succeed: no key is ever released.
  if (res.status == 200 && data[0] % 4 != 0) std::abort();
  if (res.status < 200 || res.status > 599) std::abort();
  return 0;
}
