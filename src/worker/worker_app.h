// WorkerApp: the worker's HTTP surface (contract C3).
//
//   POST /init      OpenWhisk: accepted once; its `value` may carry configuration, but only when
//                   the worker was started unconfigured, and only the settings /init may set
//   POST /run       OpenWhisk: the C3 request in `value`; the result object, or {"error": "..."}
//   POST /v1/infer  plain endpoint (Knative, FnPacker); the JSON request, or a binary envelope
//                   body (Content-Type application/vnd.moss.envelope) answered in kind;
//                   errors in net's error shape
//   GET  /v1/status, /healthz, /metrics
//
// The serving parts (key client, model store, caches) are built by a factory from the effective
// configuration: at start-up when the environment and flags already configure the worker, else
// at /init. At most max_concurrency inference requests run at once; more get 429.
//
// An opened request that failed is answered with its sealed error envelope and, in cleartext,
// only a fixed category (protocol/error_category.h). Failures are counted in the metrics; log lines about them
// are rate-limited (and never carry request data). Thread-safe.
#pragma once

#include "common/config.h"
#include "common/log_throttle.h"
#include "net/router.h"
#include "protocol/infer_result.h"
#include "worker/inference_service.h"
#include "worker/metrics.h"
#include "worker/worker_config.h"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

namespace moss::worker {

inline constexpr char kInitTwiceMessage[] = "Cannot initialize the action more than once.";

class WorkerApp {
 public:
  using ServiceFactory =
      std::function<Result<std::shared_ptr<InferenceService>>(const WorkerConfig&, Metrics&)>;

  WorkerApp(Config settings, ServiceFactory factory);

  // Builds the service now when the configuration is complete (no-op otherwise).
  Status configure_if_complete();
  bool configured() const;

  net::Router router();
  nlohmann::ordered_json status_json() const;
  const std::string& instance_id() const { return instance_id_; }
  Metrics& metrics() { return metrics_; }

  net::Response handle_init(const net::Request& request);
  net::Response handle_run(const net::Request& request);
  net::Response handle_infer(const net::Request& request);

 private:
  std::shared_ptr<InferenceService> service() const;
  // Runs one envelope within the concurrency limit and records it in the metrics.
  Result<InferResult> run_envelope(std::string_view model_id, std::string_view envelope,
                                   const std::string& endpoint);
  // Parses the C3 request object and runs it.
  Result<InferResult> serve(const nlohmann::ordered_json& request, const std::string& endpoint);
  // The answer on the wire (protocol/infer_result.h): a result, or a sealed error.
  protocol::InferResult wire_result(InferResult r) const;
  // A binary envelope body: the response is the binary response envelope (a result, or a sealed
  // error with its category in a header), run and timing in headers.
  Result<net::Response> serve_binary(const net::Request& request);
  // A failed request's log line, rate-limited; `what` must hold no request data.
  void log_failure(std::string_view endpoint, std::string_view what, std::string_view request_id);

  const std::string instance_id_;
  ServiceFactory factory_;
  Metrics metrics_;
  mutable std::mutex mu_;
  Config settings_;                            // guarded by mu_
  WorkerConfig config_;                        // guarded by mu_
  std::shared_ptr<InferenceService> service_;  // guarded by mu_
  bool initialized_ = false;                   // guarded by mu_: /init succeeded
  bool configured_at_start_ = false;           // guarded by mu_: flags/environment configured it
  std::atomic<size_t> in_flight_{0};
  log::LogThrottle failure_log_{10, std::chrono::seconds(10)};
};

}  // namespace moss::worker
