// KeyService: the HTTP API (docs/keyservice-api.md) over KeyState.
//
// Owner and user endpoints authenticate signed requests (request_auth.h) and apply the ownership
// rule (only the owner named in a model id may touch it); POST /v1/release requires an attested
// worker peer (attest::AttestedPeerIdentity with the worker purpose, verified in the handshake)
// that sent fresh evidence for its connection (POST /v1/attest-connection,
// attest/connection_attestation.h), and takes the measurement from its claims. Each request is rate limited per principal (or per
// worker certificate), counted in /metrics, and refused with a stable reason.
// Thread-safe; must outlive the server that dispatches to its router.
#pragma once

#include "attest/connection_attestation.h"
#include "common/log_throttle.h"
#include "keyservice/key_state.h"
#include "keyservice/metrics.h"
#include "keyservice/rate_limiter.h"
#include "keyservice/request_auth.h"
#include "net/router.h"

#include <functional>

namespace moss::keyservice {

struct ServiceOptions {
  int64_t request_window_s = 300;
  double rate_per_s = 50;  // per principal / worker certificate; 0 disables
  double rate_burst = 100;
};

class KeyService {
 public:
  KeyService(KeyState& state, ServiceOptions options, ClockMs clock = system_clock_ms);

  // The routes, bound to this object.
  net::Router make_router();
  // Reports open connections in /metrics (set once the server exists).
  void set_connections_probe(std::function<size_t()> probe) { connections_ = std::move(probe); }
  // How POST /v1/attest-connection judges evidence (the worker peer configuration); without it
  // that endpoint refuses and so does every release. Set once, before serving.
  void set_connection_verifier(attest::ConnectionEvidenceVerifier verifier) {
    connection_verifier_ = std::move(verifier);
  }
  const Metrics& metrics() const { return metrics_; }

 private:
  using Signed = std::function<Result<net::Response>(const std::string& principal,
                                                     const net::Request& request)>;
  net::Handler signed_endpoint(std::string endpoint, Signed handler);
  // The answer of `run` to a request: counted, errors logged (throttled), and the state it shows
  // attached. The request's ticket (state_.answer_ticket()) is taken before `run` reads anything,
  // so the answer shows only a state a read made for it saw.
  net::Response answer(const std::string& endpoint, const std::function<Result<net::Response>()>& run);
  // The model id from /v1/models/{owner}/{name}/..., checked to belong to `principal`.
  Result<std::string> owned_model(const net::Request& request, const std::string& principal) const;

  net::Response handle_register(const net::Request& request);
  net::Response handle_release(const net::Request& request);
  Result<net::Response> release(const net::Request& request);
  net::Response handle_attest_connection(const net::Request& request);
  // GET /v1/audit/head from an attested worker (its key client's fork check): no signature, the
  // worker certificate authenticates it.
  net::Response handle_worker_audit_head(const net::Request& request);
  Result<net::Response> put_model_key(const std::string& p, const net::Request& request);
  Result<net::Response> retire_model_key(const std::string& p, const net::Request& request);
  Result<net::Response> list_model_keys(const std::string& p, const net::Request& request);
  Result<net::Response> delete_model(const std::string& p, const net::Request& request);
  Result<net::Response> add_grant(const std::string& p, const net::Request& request);
  Result<net::Response> revoke_grant(const std::string& p, const net::Request& request);
  Result<net::Response> list_grants(const std::string& p, const net::Request& request);
  Result<net::Response> put_request_key(const std::string& p, const net::Request& request);
  Result<net::Response> delete_request_key(const std::string& p, const net::Request& request);
  Result<net::Response> query_audit(const std::string& p, const net::Request& request);
  Result<net::Response> audit_head(const std::string& p, const net::Request& request);

  KeyState& state_;
  const ServiceOptions options_;
  RequestAuthenticator auth_;
  RateLimiter limiter_;
  Metrics metrics_;
  std::function<size_t()> connections_;
  std::optional<attest::ConnectionEvidenceVerifier> connection_verifier_;
  // A throttled sample of refusals and errors reaches the log (each is counted in metrics).
  log::LogThrottle refusal_lines_{20, std::chrono::seconds(10)};
  log::LogThrottle error_lines_{20, std::chrono::seconds(10)};
};

}  // namespace moss::keyservice
