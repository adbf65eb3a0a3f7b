// OpenWhiskBackend: each instance of a pool is one OpenWhisk action running the worker image,
// driven through OpenWhisk's REST API (docs/packer.md cites the API documentation):
//  - start: PUT  /api/v1/namespaces/{ns}/actions/{prefix}-{instance}?overwrite=true
//           {"exec":{"kind":"blackbox","image":IMAGE},
//            "limits":{"concurrency":C,"memory":MB,"timeout":MS},
//            "parameters":[{"key":"MOSS_WORKER_<KEY>","value":V,"init":true},...]}
//  - invoke: POST /api/v1/namespaces/{ns}/actions/{name}?blocking=true&result=true with the C3
//           body; 200 carries the action's result (the C3 response); 202 {"activationId":ID} means
//           the blocking wait timed out: poll GET /api/v1/namespaces/{ns}/activations/{ID} (404
//           until it completes) until the request's timeout;
//  - stop:  DELETE /api/v1/namespaces/{ns}/actions/{name}.
// Basic auth ("uuid:key") on every call. Platform errors map to Status codes with a message that
// names the action and OpenWhisk's own error text: 401 unauthenticated, 403 permission-denied,
// 404 not-found, 409 already-exists, 413 resource-exhausted (payload), 429 resource-exhausted
// (throttled), 502 the action failed (its {"error":...} result), others unavailable.
// Thread-safe.
#pragma once

#include <chrono>
#include <memory>

#include "common/secret_bytes.h"
#include "packer/backend.h"
#include "packer/pool_spec.h"

namespace moss::net {
class ClientPool;
}

namespace moss::packer {

struct OpenWhiskBackendOptions {
  OpenWhiskSpec spec;
  std::string auth;  // "uuid:key", resolved from spec.auth or spec.auth_file
  int max_concurrency = 10;
  uint64_t memory_mb = 1024;
  std::map<std::string, std::string> worker_config;
  std::chrono::milliseconds poll_interval{100};
  std::chrono::milliseconds request_timeout{120'000};
};

class OpenWhiskBackend final : public Backend {
 public:
  // Checks the API host URL and loads the CA bundle for https.
  static Result<std::unique_ptr<OpenWhiskBackend>> create(OpenWhiskBackendOptions options);
  ~OpenWhiskBackend() override;
  std::string_view kind() const override { return "openwhisk"; }
  Result<InstancePtr> start(const std::string& instance_id) override;

  struct Shared;

 private:
  explicit OpenWhiskBackend(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  std::shared_ptr<Shared> shared_;
};

}  // namespace moss::packer
