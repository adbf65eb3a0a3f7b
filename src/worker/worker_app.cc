#include "worker/worker_app.h"

#include "common/strict_json.h"

#include "common/encoding.h"
#include "common/logging.h"
#include "crypto/random.h"
#include "net/error_response.h"
#include "protocol/envelope_frame.h"
#include "protocol/error_category.h"
#include "protocol/infer_request.h"

namespace moss::worker {

namespace {

using Clock = std::chrono::steady_clock;

std::string new_instance_id() {
  std::array<uint8_t, 8> b{};
  (void)crypto::random_bytes(b);
  return hex_encode(b);
}

// OpenWhisk's error shape: a JSON object with the single field "error".
net::Response openwhisk_error(int status, std::string_view message) {
  return net::Response::json(status, nlohmann::json{{"error", message}}.dump());
}
// "<code>[ (<reason>)]: <message>" of what the caller may see (net::public_error): /init and
// /run are reached by whoever reaches the port, so an internal failure's text stays in the log.
net::Response openwhisk_error(const Status& s) {
  const net::PublicError e = net::public_error(s);
  return openwhisk_error(net::http_status_for(s.code()),
                         e.reason.empty() ? fmt::format("{}: {}", e.code, e.message)
                                          : fmt::format("{} ({}): {}", e.code, e.reason, e.message));
}

// Strict (no duplicate keys) and fast on the usual shape: the body is mostly one long base64
// string inside the envelope text.
Result<nlohmann::ordered_json> parse_body(const net::Request& r) {
  auto parsed = parse_json_strict(r.body, "request body", 16);
  if (!parsed.ok()) return parsed.status();
  if (!parsed->is_object()) return invalid_argument("the request body must be a JSON object");
  return parsed;
}

}  // namespace

WorkerApp::WorkerApp(Config settings, ServiceFactory factory)
    : instance_id_(new_instance_id()), factory_(std::move(factory)), settings_(std::move(settings)) {}

Status WorkerApp::configure_if_complete() {
  std::lock_guard lock(mu_);
  MOSS_ASSIGN_OR_RETURN(config_, worker_config_from(settings_));
  if (!config_.complete()) return Status::Ok();
  MOSS_ASSIGN_OR_RETURN(service_, factory_(config_, metrics_));
  configured_at_start_ = true;
  return Status::Ok();
}

bool WorkerApp::configured() const {
  std::lock_guard lock(mu_);
  return service_ != nullptr;
}

std::shared_ptr<InferenceService> WorkerApp::service() const {
  std::lock_guard lock(mu_);
  return service_;
}

nlohmann::ordered_json WorkerApp::status_json() const {
  std::shared_ptr<InferenceService> svc;
  size_t max_concurrency;
  uint64_t budget;
  bool initialized;
  {
    std::lock_guard lock(mu_);
    svc = service_;
    max_concurrency = config_.max_concurrency;
    budget = config_.memory_budget_bytes;
    initialized = initialized_;
  }
  nlohmann::ordered_json models = nlohmann::ordered_json::array();
  uint64_t used = 0;
  if (svc) {
    auto snap = svc->snapshot();
    used = snap.used_bytes;
    for (const auto& m : snap.models) {
      models.push_back({{"model_id", m.model_id},
                        {"weights_bytes", m.weights_bytes},
                        {"arena_bytes", m.arena_bytes},
                        {"contexts", m.contexts},
                        {"in_use", m.in_use},
                        {"last_used_ms_ago", m.last_used_ms_ago}});
    }
  }
  return {{"instance_id", instance_id_},
          {"in_flight", in_flight_.load()},
          {"max_concurrency", max_concurrency},
          {"memory_budget_bytes", budget},
          {"memory_used_bytes", used},
          {"models", models},
          {"configured", svc != nullptr},
          {"initialized", initialized}};
}

net::Response WorkerApp::handle_init(const net::Request& request) {
  std::lock_guard lock(mu_);
  if (initialized_) {
    log_failure("/init", "refused: already initialized", "");
    return openwhisk_error(403, kInitTwiceMessage);
  }
  auto body = parse_body(request);
  if (!body.ok()) return openwhisk_error(body.status());
  nlohmann::json value = body->contains("value") ? nlohmann::json((*body)["value"]) : nlohmann::json::object();
  // A worker configured by its operator (flags, environment, file) is not reconfigured by
  // whoever reaches its port first; OpenWhisk's own /init (no worker setting) just marks it
  // initialized.
  if (configured_at_start_) {
    if (value.is_object()) {
      for (const auto& [name, v] : value.items()) {
        if (!is_openwhisk_init_field(name)) {
          log_failure("/init", "refused: configured at start", "");
          return openwhisk_error(403, "the worker was configured at start (flags or environment): /init may not "
                                      "change its settings");
        }
      }
    }
    initialized_ = true;
    log::get("worker")->info("/init accepted instance={} (configured at start)", instance_id_);
    return net::Response::json(200, R"({"ok":true})");
  }
  Status applied = apply_init_value(settings_, value);
  if (!applied.ok()) return openwhisk_error(applied);
  auto config = worker_config_from(settings_);
  if (!config.ok()) return openwhisk_error(config.status());
  if (!config->complete()) {
    return openwhisk_error(400, fmt::format("not configured: '{}' is missing (give it in the /init "
                                            "value or as MOSS_WORKER_{})",
                                            config->missing(), [&] {
                                              std::string s = config->missing();
                                              for (char& c : s) c = static_cast<char>(std::toupper(c));
                                              return s;
                                            }()));
  }
  auto svc = factory_(*config, metrics_);
  if (!svc.ok()) {
    log::get("worker")->error("/init failed: {}", svc.status().to_string());
    return openwhisk_error(svc.status());
  }
  service_ = std::move(svc).value();
  config_ = std::move(config).value();
  initialized_ = true;
  log::get("worker")->info("/init accepted instance={}", instance_id_);
  return net::Response::json(200, R"({"ok":true})");
}

void WorkerApp::log_failure(std::string_view endpoint, std::string_view what, std::string_view request_id) {
  auto admitted = failure_log_.admit();
  if (!admitted) {
    metrics_.record_log_suppressed(1);
    return;
  }
  log::get("worker")->info("{} failed: {} request={} suppressed={}", endpoint, what,
                           request_id.empty() ? "-" : request_id, *admitted);
}

Result<InferResult> WorkerApp::run_envelope(std::string_view model_id, std::string_view envelope,
                                            const std::string& endpoint) {
  auto svc = service();
  if (!svc) return unavailable("the worker is not configured yet: POST /init or set MOSS_WORKER_* settings");
  size_t max_concurrency;
  {
    std::lock_guard lock(mu_);
    max_concurrency = config_.max_concurrency;
  }
  struct InFlight {
    std::atomic<size_t>& n;
    ~InFlight() { --n; }
  } guard{in_flight_};
  if (++in_flight_ > max_concurrency) {
    return resource_exhausted("the worker is serving its maximum of {} concurrent requests", max_concurrency);
  }
  auto r = svc->infer(model_id, envelope);
  if (r.ok() && !r->failure) metrics_.record_success(endpoint, r->kind, r->timing);
  if (r.ok() && r->failure) {
    metrics_.record_error(endpoint, error_code_name(r->failure->code), r->timing.total_ms, r->failure->category);
    log_failure(endpoint == "run" ? "/run" : "/v1/infer",
                fmt::format("category={} code={} reason={}", r->failure->category,
                            error_code_name(r->failure->code),
                            r->failure->reason.empty() ? "-" : r->failure->reason),
                r->request_id);
  }
  return r;
}

Result<InferResult> WorkerApp::serve(const nlohmann::ordered_json& request, const std::string& endpoint) {
  MOSS_ASSIGN_OR_RETURN(protocol::InferRequest r, protocol::InferRequest::from_json(request));
  return run_envelope(r.model_id, r.envelope, endpoint);
}

protocol::InferResult WorkerApp::wire_result(InferResult r) const {
  protocol::InferResult out;
  out.envelope = std::move(r.envelope);
  if (r.failure) {
    out.error = protocol::SealedError{r.failure->code, std::string(r.failure->category)};
    return out;
  }
  out.run = r.kind;
  out.timing_ms = nlohmann::ordered_json::parse(timing_json_text(r.timing));
  out.instance = status_json();
  return out;
}

Result<net::Response> WorkerApp::serve_binary(const net::Request& request) {
  // Unauthenticated, for routing only: the service opens the envelope under exactly this header.
  MOSS_ASSIGN_OR_RETURN(protocol::EnvelopeHeader header, protocol::peek_binary_envelope_header(request.body));
  MOSS_ASSIGN_OR_RETURN(InferResult r, run_envelope(header.model_id, request.body, "infer"));
  const int status = r.failure ? net::http_status_for(r.failure->code) : 200;
  protocol::InferResult wire = wire_result(std::move(r));
  net::Response resp;
  resp.status = status;
  resp.headers.set("Content-Type", protocol::kEnvelopeMediaType);
  for (const auto& [name, value] : wire.binary_headers()) resp.headers.set(name, value);
  resp.body = std::move(wire.envelope);
  return resp;
}

net::Response WorkerApp::handle_run(const net::Request& request) {
  const auto start = Clock::now();
  {
    std::lock_guard lock(mu_);
    if (!initialized_) return openwhisk_error(500, "not initialized: POST /init before /run");
  }
  auto body = parse_body(request);
  Result<InferResult> result = body.ok() ? serve(body->contains("value") ? (*body)["value"] : nlohmann::ordered_json(), "run")
                                         : Result<InferResult>(body.status());
  if (!result.ok()) {
    metrics_.record_error("run", error_code_name(result.status().code()),
                          std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    log_failure("/run", result.status().to_string(), "");
    return openwhisk_error(result.status());
  }
  if (result->failure) {
    // OpenWhisk keeps only the `error` field of a result that has one, and treats a non-200 /run
    // as the action's own failure (a developer error: the container is discarded). So the sealed
    // error is all inside `error`, answered 200: an application error carrying the envelope.
    nlohmann::ordered_json e;
    e["code"] = error_code_name(result->failure->code);
    e["category"] = result->failure->category;
    e["message"] = protocol::sealed_failure_message(result->failure->category);
    e["envelope"] = std::move(result->envelope);
    nlohmann::ordered_json j;
    j["error"] = std::move(e);
    return net::Response::json(200, j.dump());
  }
  return net::Response::json(200, wire_result(std::move(result).value()).to_json());
}

net::Response WorkerApp::handle_infer(const net::Request& request) {
  const auto start = Clock::now();
  auto failed = [&](const Status& status) {
    metrics_.record_error("infer", error_code_name(status.code()),
                          std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    log_failure("/v1/infer", status.to_string(), "");
    return net::error_response(status);
  };
  if (request.headers.get_or("Content-Type", "") == protocol::kEnvelopeMediaType) {
    auto result = serve_binary(request);
    return result.ok() ? std::move(result).value() : failed(result.status());
  }
  auto body = parse_body(request);
  Result<InferResult> result = body.ok() ? serve(*body, "infer") : Result<InferResult>(body.status());
  if (!result.ok()) return failed(result.status());
  const int status = result->failure ? net::http_status_for(result->failure->code) : 200;
  return net::Response::json(status, wire_result(std::move(result).value()).to_json());
}

net::Router WorkerApp::router() {
  net::Router r;
  r.post("/init", [this](const net::Request& q) { return handle_init(q); });
  r.post("/run", [this](const net::Request& q) { return handle_run(q); });
  r.post("/v1/infer", [this](const net::Request& q) { return handle_infer(q); });
  r.get("/v1/status", [this](const net::Request&) { return net::Response::json(200, status_json().dump()); });
  r.get("/healthz", [](const net::Request&) { return net::Response::json(200, R"({"ok":true})"); });
  r.get("/metrics", [this](const net::Request&) {
    auto svc = service();
    auto resp = net::Response::text(200, metrics_.render(svc ? svc->snapshot() : ModelCache::Snapshot{},
                                                         in_flight_.load()));
    resp.headers.set("Content-Type", "text/plain; version=0.0.4");
    return resp;
  });
  return r;
}

}  // namespace moss::worker
