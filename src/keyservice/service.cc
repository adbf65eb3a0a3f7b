#include "keyservice/service.h"

#include "common/encoding.h"
#include "common/log_throttle.h"
#include "common/logging.h"
#include "attest/attested_tls.h"
#include "crypto/identity.h"
#include "crypto/keyservice_state.h"
#include "protocol/ids.h"
#include "crypto/signed_request.h"
#include "keyservice/request_body.h"
#include "net/error_response.h"

#include <charconv>

namespace moss::keyservice {

KeyService::KeyService(KeyState& state, ServiceOptions options, ClockMs clock)
    : state_(state),
      options_(options),
      auth_(state, std::move(clock), options.request_window_s),
      limiter_(options.rate_per_s, options.rate_burst) {}

net::Response KeyService::answer(const std::string& endpoint,
                                 const std::function<Result<net::Response>()>& run) {
  const uint64_t ticket = state_.answer_ticket();
  Result<net::Response> result = run();
  // Refusals are counted per request in /metrics; the log gets a throttled sample of them (a
  // flood of bad requests must not become a flood of log lines), and none for rate limiting.
  net::Response response;
  if (result.ok()) {
    response = std::move(result).value();
  } else {
    const Status& s = result.status();
    if (s.code() == ErrorCode::kInternal || s.code() == ErrorCode::kDataLoss) {
      // A value that does not unseal or authenticate is the state's fault, never the client's.
      if (s.code() == ErrorCode::kDataLoss) metrics_.integrity_errors.fetch_add(1);
      if (auto dropped = error_lines_.admit()) {
        log::get("keyservice")->error("endpoint={} error=\"{}\" suppressed={}", endpoint,
                                      s.to_string(), *dropped);
      }
    } else if (s.code() != ErrorCode::kResourceExhausted) {
      if (auto dropped = refusal_lines_.admit()) {
        log::get("keyservice")->info("endpoint={} refused=\"{}\" suppressed={}", endpoint,
                                     s.message(), *dropped);
      }
    }
    response = net::error_response(s);
  }
  // The version and audit head of one committed state, read together: clients judge each answer
  // by both (rollback and fork checks, crypto/keyservice_state.h). Only an answer about the state
  // shows them, and only what a read made for this request saw (KeyState::answer_state). A 5xx
  // is no such answer (the client moves on to another replica), and a request refused before
  // the state was read (malformed, unauthenticated, rate-limited) has no version to show; both go
  // without, rather than with a version this replica saw earlier, which may be older than one
  // another replica acknowledged meanwhile (a client would refuse it as a rollback).
  if (response.status < 500) {
    if (auto now = state_.answer_state(ticket)) {
      response.headers.set(crypto::kHeaderStateVersion, std::to_string(now->version));
      response.headers.set(crypto::kHeaderAuditHead, crypto::audit_head_header(now->audit_seq, now->audit_hash));
    }
  }
  metrics_.count_request(endpoint, response.status);
  return response;
}

net::Handler KeyService::signed_endpoint(std::string endpoint, Signed handler) {
  return [this, endpoint = std::move(endpoint), handler = std::move(handler)](const net::Request& req) {
    return answer(endpoint, [&]() -> Result<net::Response> {
      MOSS_ASSIGN_OR_RETURN(std::string principal, auth_.authenticate(req));
      if (!limiter_.allow(principal)) {
        metrics_.rate_limited.fetch_add(1);
        return refuse(ErrorCode::kResourceExhausted, "rate-limited", "too many requests; retry later");
      }
      return handler(principal, req);
    });
  };
}

Result<std::string> KeyService::owned_model(const net::Request& request,
                                            const std::string& principal) const {
  std::string owner(request.param("owner"));
  std::string name(request.param("name"));
  std::string model_id = owner + "/" + name;
  Status s = protocol::validate_model_id(model_id);
  // The name arrives percent-decoded: "a%2Fb" would make a model id with two '/', which no
  // release (model_id_field) could ever name.
  if (!s.ok() || !crypto::is_principal_id(owner) || name.find('/') != std::string::npos) {
    return bad_request("model id in the path must be <owner principal id>/<name>");
  }
  if (owner != principal) {
    return refuse(ErrorCode::kPermissionDenied, "not-owner",
                  fmt::format("model {} belongs to another owner", model_id));
  }
  return model_id;
}

net::Response KeyService::handle_register(const net::Request& req) {
  return answer("register", [&]() -> Result<net::Response> {
    MOSS_ASSIGN_OR_RETURN(auto body, parse_body(req.body, {"public_key"}));
    MOSS_ASSIGN_OR_RETURN(std::string b64, text_field(body, "public_key"));
    auto raw = base64_decode(b64, 32);
    if (!raw.ok() || raw->size() != 32) return bad_request("public_key must be base64 of 32 bytes");
    std::array<uint8_t, 32> key{};
    std::copy(raw->begin(), raw->end(), key.begin());
    // Strict keys only: a small-order key lets one constant signature verify for any message.
    if (!crypto::PublicKey::from_raw(key).ok()) {
      return refuse(ErrorCode::kInvalidArgument, "weak-public-key",
                    "public_key is not a canonical Ed25519 point of large order");
    }
    MOSS_ASSIGN_OR_RETURN(std::string id, auth_.authenticate(req, &key));
    if (!limiter_.allow(id)) {
      metrics_.rate_limited.fetch_add(1);
      return refuse(ErrorCode::kResourceExhausted, "rate-limited", "too many requests; retry later");
    }
    MOSS_ASSIGN_OR_RETURN(bool created, state_.register_principal(id, key));
    nlohmann::json j = {{"principal_id", id}, {"created", created}};
    return net::Response::json(created ? 201 : 200, j.dump());
  });
}

namespace {
// An optional integer query parameter in [lo, hi]; nullopt when absent.
Result<std::optional<int64_t>> int_query_param(const net::Request& req, const char* name, int64_t lo,
                                               int64_t hi) {
  auto v = req.query_param(name);
  if (!v) return std::optional<int64_t>();
  int64_t out = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || ptr != v->data() + v->size() || out < lo || out > hi) {
    return bad_request(fmt::format("query parameter {} must be an integer in [{}, {}]", name, lo, hi));
  }
  return std::optional<int64_t>(out);
}
}  // namespace

Result<net::Response> KeyService::query_audit(const std::string& p, const net::Request& req) {
  store::AuditQuery q;
  q.party = p;
  if (auto m = req.query_param("model_id")) {
    q.model_id = *m;
    if (!protocol::validate_model_id(q.model_id).ok()) return bad_request("bad model_id");
  }
  MOSS_ASSIGN_OR_RETURN(auto after, int_query_param(req, "after", 0, INT64_MAX));
  MOSS_ASSIGN_OR_RETURN(auto limit, int_query_param(req, "limit", 1, store::kMaxAuditPage));
  q.after_seq = after.value_or(0);
  q.limit = limit.value_or(100);
  MOSS_ASSIGN_OR_RETURN(auto records, state_.query_audit(q));
  nlohmann::json events = nlohmann::json::array();
  for (const auto& r : records) {
    events.push_back({{"seq", r.seq}, {"time_ms", r.time_ms}, {"type", r.event.type},
                      {"actor", r.event.actor}, {"model_id", r.event.model_id},
                      {"user_id", r.event.user_id}, {"measurement", r.event.measurement},
                      {"detail", r.event.detail}, {"prev_hash", hex_encode(r.prev_hash)},
                      {"hash", hex_encode(r.hash)}});
  }
  // The cursor for the next page: the last sequence number returned (or the one given).
  int64_t next = records.empty() ? q.after_seq : records.back().seq;
  nlohmann::json j = {{"events", std::move(events)}, {"next_after", next}};
  return net::Response::json(200, j.dump());
}

Result<net::Response> KeyService::audit_head(const std::string&, const net::Request& req) {
  MOSS_ASSIGN_OR_RETURN(auto at, int_query_param(req, "at", 0, INT64_MAX));
  MOSS_ASSIGN_OR_RETURN(auto head, state_.signed_audit_head(at));
  nlohmann::json j = {{"seq", head.head.seq},
                      {"hash", hex_encode(head.head.hash)},
                      {"state_version", head.state_version},
                      {"keyservice_key", base64_encode(state_.identity().raw())},
                      {"signature", base64_encode(head.signature)}};
  if (head.at) {
    j["at"] = *head.at;
    j["at_hash"] = hex_encode(head.at_hash);
  }
  return net::Response::json(200, j.dump());
}

net::Router KeyService::make_router() {
  net::Router r;
  // Ready means able to answer: the state store (etcd, for replicas) must be readable now, so a
  // replica cut off from etcd leaves its Service's endpoints instead of failing every call.
  // /livez only says the process serves (a liveness probe must not restart replicas while etcd
  // is down).
  r.get("/healthz", [this](const net::Request&) {
    Status readable = state_.store_readable();
    if (!readable.ok()) return net::error_response(readable);
    return net::Response::text(200, "ok\n");
  });
  r.get("/livez", [](const net::Request&) { return net::Response::text(200, "ok\n"); });
  r.get("/metrics", [this](const net::Request&) {
    auto res = net::Response::text(200, metrics_.render(state_.audit_events_written(),
                                                        connections_ ? connections_() : 0));
    res.headers.set("Content-Type", "text/plain; version=0.0.4");
    return res;
  });
  r.post("/v1/principals", [this](const net::Request& req) { return handle_register(req); });
  r.post("/v1/release", [this](const net::Request& req) { return handle_release(req); });
  r.post("/v1/attest-connection", [this](const net::Request& req) { return handle_attest_connection(req); });
  auto bind = [this](auto method) {
    return [this, method](const std::string& p, const net::Request& req) {
      return (this->*method)(p, req);
    };
  };
  r.post("/v1/models/{owner}/{name}/keys",
         signed_endpoint("model_key_put", bind(&KeyService::put_model_key)));
  r.get("/v1/models/{owner}/{name}/keys",
        signed_endpoint("model_key_list", bind(&KeyService::list_model_keys)));
  r.post("/v1/models/{owner}/{name}/keys/{version}/retire",
         signed_endpoint("model_key_retire", bind(&KeyService::retire_model_key)));
  r.del("/v1/models/{owner}/{name}", signed_endpoint("model_delete", bind(&KeyService::delete_model)));
  r.post("/v1/models/{owner}/{name}/grants",
         signed_endpoint("grant_add", bind(&KeyService::add_grant)));
  r.get("/v1/models/{owner}/{name}/grants",
        signed_endpoint("grant_list", bind(&KeyService::list_grants)));
  r.post("/v1/models/{owner}/{name}/grants/revoke",
         signed_endpoint("grant_revoke", bind(&KeyService::revoke_grant)));
  r.post("/v1/request-keys", signed_endpoint("request_key_put", bind(&KeyService::put_request_key)));
  r.post("/v1/request-keys/delete",
         signed_endpoint("request_key_delete", bind(&KeyService::delete_request_key)));
  r.get("/v1/audit", signed_endpoint("audit", bind(&KeyService::query_audit)));
  // Principals sign; an attested worker (no principal) is known by its certificate.
  r.get(crypto::kAuditHeadPath,
        [this, principal = signed_endpoint("audit_head", bind(&KeyService::audit_head))](
            const net::Request& req) {
          if (std::dynamic_pointer_cast<const attest::AttestedPeerIdentity>(req.peer)) {
            return handle_worker_audit_head(req);
          }
          return principal(req);
        });
  return r;
}

}  // namespace moss::keyservice
