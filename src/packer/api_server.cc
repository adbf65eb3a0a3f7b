#include "packer/api_server.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "common/strict_json.h"
#include "net/error_response.h"
#include "protocol/envelope_frame.h"
#include "protocol/headers.h"
#include "protocol/infer_request.h"

namespace moss::packer {

namespace {

using json = nlohmann::json;
using net::Request;
using net::Response;

bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

Response json_ok(int status, const json& j) { return Response::json(status, j.dump()); }

// A pool's refusal; with Retry-After (whole seconds, at least 1) when the pool refused at once
// because no instance could take the request within its deadline.
Response invoke_error(const Status& status, double retry_after_ms) {
  Response resp = net::error_response(status);
  if (retry_after_ms > 0) {
    const auto seconds = static_cast<long long>(std::ceil(std::min(retry_after_ms, 3.6e6) / 1000));
    resp.headers.set("Retry-After", std::to_string(std::max(1LL, seconds)));
  }
  return resp;
}

// A pool definition: strict (no duplicate keys), its depth bounded; the server bounds its size.
Result<nlohmann::ordered_json> parse_pool_body(const Request& r) {
  MOSS_ASSIGN_OR_RETURN(auto j, parse_json_strict(r.body, "pool definition", kPoolSpecMaxDepth));
  if (!j.is_object()) return invalid_argument("pool definition: the body must be a JSON object");
  return j;
}

// The result in the client's encoding (a result that crossed a JSON-only hop, OpenWhisk, is
// converted for a binary client; one from a local worker passes through as it came): a JSON body,
// or the binary envelope with the rest in headers.
Response answer(protocol::InferResult result, protocol::EnvelopeEncoding wire) {
  if (Status s = result.convert_envelope_to(wire); !s.ok()) {
    return net::error_response(internal_error("the worker's result cannot be re-encoded: {}", s.message()));
  }
  const int status = result.error ? net::http_status_for(result.error->code) : 200;
  if (wire == protocol::EnvelopeEncoding::kJson) return Response::json(status, result.to_json());
  Response r;
  r.status = status;
  r.headers.set("Content-Type", protocol::kEnvelopeMediaType);
  for (const auto& [name, value] : result.binary_headers()) r.headers.set(name, value);
  r.body = std::move(result.envelope);
  return r;
}

// A binary request envelope as the body (docs/packer-api.md): the model is the one it names, the
// deadline in a header; answered in binary, FnPacker's annotation in a header.
Response invoke_binary(Pool& pool, const Request& r) {
  auto header = protocol::peek_binary_envelope_header(r.body);
  if (!header.ok()) return net::error_response(header.status());
  if (header->direction != protocol::Direction::kRequest) {
    return net::error_response(invalid_argument("the envelope is a response, not a request"));
  }
  std::optional<int64_t> deadline;
  if (auto d = r.headers.get(protocol::kDeadlineHeader)) {
    auto parsed = protocol::parse_deadline_ms(*d);
    if (!parsed.ok()) return net::error_response(parsed.status());
    deadline = *parsed;
  }
  double retry_after_ms = 0;
  auto reply = pool.invoke(header->model_id, r.body, deadline, &retry_after_ms);
  if (!reply.ok()) return invoke_error(reply.status(), retry_after_ms);
  return answer(std::move(reply).value(), protocol::EnvelopeEncoding::kBinary);
}

Response invoke(PoolManager& pools, const Request& r) {
  auto pool = pools.get(r.param("pool"));
  if (!pool.ok()) return net::error_response(pool.status());
  if (r.headers.get_or("Content-Type", "") == protocol::kEnvelopeMediaType) return invoke_binary(**pool, r);
  auto request = protocol::InferRequest::from_json_text(r.body);
  if (!request.ok()) return net::error_response(request.status());
  double retry_after_ms = 0;
  auto reply = (*pool)->invoke(request->model_id, request->envelope, request->deadline_ms, &retry_after_ms);
  if (!reply.ok()) return invoke_error(reply.status(), retry_after_ms);
  return answer(std::move(reply).value(), protocol::EnvelopeEncoding::kJson);
}

json describe(const Pool& p) {
  json j = p.status();
  j["spec"] = p.spec().to_json();
  return j;
}

}  // namespace

net::Router make_api_router(PoolManager& pools, std::string token) {
  auto tok = std::make_shared<const std::string>(std::move(token));
  // Wraps a handler with the bearer-token check.
  auto authed = [tok](std::function<Response(const Request&)> h) {
    return [tok, h = std::move(h)](const Request& r) -> Response {
      std::string_view auth = r.headers.get_or("Authorization", "");
      constexpr std::string_view kBearer = "Bearer ";
      if (auth.size() <= kBearer.size() || auth.substr(0, kBearer.size()) != kBearer ||
          !constant_time_equal(auth.substr(kBearer.size()), *tok)) {
        Response resp =
            net::error_response(unauthenticated("a valid operator bearer token is required"));
        resp.headers.set("WWW-Authenticate", "Bearer");
        return resp;
      }
      return h(r);
    };
  };
  net::Router router;
  router.get("/healthz", [](const Request&) { return Response::json(200, R"({"status":"ok"})"); });
  router.get("/v1/pools", authed([&pools](const Request&) {
               json list = json::array();
               for (const PoolPtr& p : pools.list()) {
                 json s = p->status();
                 list.push_back({{"name", p->spec().name},
                                 {"backend", backend_kind_name(p->spec().backend)},
                                 {"policy", policy_kind_name(p->spec().policy)},
                                 {"instances", s["instances"].size()},
                                 {"max_instances", p->spec().max_instances}});
               }
               return json_ok(200, {{"pools", list}});
             }));
  router.post("/v1/pools", authed([&pools](const Request& r) {
                auto body = parse_pool_body(r);
                if (!body.ok()) return net::error_response(body.status());
                auto pool = pools.create(*body);
                if (!pool.ok()) return net::error_response(pool.status());
                return json_ok(201, describe(**pool));
              }));
  router.get("/v1/pools/{pool}", authed([&pools](const Request& r) {
               auto pool = pools.get(r.param("pool"));
               if (!pool.ok()) return net::error_response(pool.status());
               return json_ok(200, describe(**pool));
             }));
  router.get("/v1/pools/{pool}/status", authed([&pools](const Request& r) {
               auto pool = pools.get(r.param("pool"));
               if (!pool.ok()) return net::error_response(pool.status());
               return json_ok(200, (*pool)->status());
             }));
  router.del("/v1/pools/{pool}", authed([&pools](const Request& r) {
               Status s = pools.remove(r.param("pool"));
               if (!s.ok()) return net::error_response(s);
               return json_ok(200, {{"deleted", std::string(r.param("pool"))}});
             }));
  router.post("/v1/pools/{pool}/invoke",
              authed([&pools](const Request& r) { return invoke(pools, r); }));
  return router;
}

}  // namespace moss::packer
