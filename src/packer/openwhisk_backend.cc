#include "packer/openwhisk_backend.h"

#include <cctype>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/encoding.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/strict_json.h"
#include "net/client.h"
#include "net/client_pool.h"
#include "net/url.h"
#include "packer/wire.h"
#include "protocol/envelope_frame.h"

namespace moss::packer {

using json = nlohmann::json;
using Json = nlohmann::ordered_json;

struct OpenWhiskBackend::Shared {
  OpenWhiskBackendOptions options;
  std::string authorization;  // "Basic <b64>": a credential, never logged
  std::string base;           // "/api/v1/namespaces/<ns>"
  std::unique_ptr<net::ClientPool> clients;

  ~Shared() {
    // Best effort wipe of the credential copies.
    std::fill(authorization.begin(), authorization.end(), '\0');
    std::fill(options.auth.begin(), options.auth.end(), '\0');
  }

  net::ClientOptions client_options;

  // `fresh_connection`: for invocations. A pooled keep-alive client replays a request whose reused
  // connection failed, which would run the action twice.
  Result<net::Response> call(std::string method, std::string target, std::string body = {},
                             bool fresh_connection = false) {
    std::string_view type = body.empty() ? std::string_view() : "application/json";
    net::Request req =
        net::Request::make(std::move(method), std::move(target), std::move(body), type);
    req.headers.set("Authorization", authorization);
    req.headers.set("Accept", "application/json");
    if (fresh_connection) {
      net::Client client(client_options);
      return client.request(req);
    }
    return clients->request(req);
  }
};

namespace {

// OpenWhisk's answers come from outside the packer: parsed strictly (a duplicate key could say
// two things about one result), their depth bounded; the HTTP client bounds their size.
constexpr int kMaxAnswerDepth = 16;
constexpr size_t kMaxActivationIdBytes = 256;
constexpr size_t kMaxAnswerFields = 256;

Result<Json> parse_answer(std::string_view body, std::string_view what) {
  return parse_json_strict(body, what, kMaxAnswerDepth);
}

std::string percent_encode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// OpenWhisk's error bodies are {"error":"...","code":"..."}; an action's failure result is
// {"error": <anything>}.
std::string error_text(const net::Response& r) {
  auto j = parse_answer(r.body, "OpenWhisk error");
  if (j.ok() && j->is_object() && j->contains("error")) {
    const Json& e = (*j)["error"];
    std::string text = e.is_string() ? e.get<std::string>() : e.dump();
    return text.substr(0, 500);
  }
  return r.body.substr(0, 200);
}

Status map_error(const net::Response& r, std::string_view what) {
  std::string text = error_text(r);
  switch (r.status) {
    case 400:
      return invalid_argument("OpenWhisk rejected {}: {}", what, text);
    case 401:
      return unauthenticated("OpenWhisk rejected the credentials for {}: {}", what, text);
    case 403:
      return permission_denied("OpenWhisk denied {}: {}", what, text);
    case 404:
      return not_found("OpenWhisk: {}: not found: {}", what, text);
    case 409:
      return already_exists("OpenWhisk: {}: conflict: {}", what, text);
    case 413:
      return resource_exhausted("OpenWhisk: {}: payload too large: {}", what, text);
    case 429:
      return resource_exhausted("OpenWhisk throttled {}: {}", what, text);
    case 502:
      return unavailable("the action failed during {}: {}", what, text);
    default:
      return unavailable("OpenWhisk answered HTTP {} to {}: {}", r.status, what, text);
  }
}

// The worker's /run answers errors as {"error": "..."}; a 200 result carrying one is an error too.
// A sealed error ({"error":{..., "envelope"}}) is the worker's answer to the user: passed on as
// the JSON error result, as the local backend does, not turned into ours.
Result<protocol::InferResult> result_or_error(const Json& result, std::string_view action) {
  if (!result.is_object()) return internal_error("action {} returned a non-object result", action);
  if (auto sealed = sealed_error_from_action_result(result)) return std::move(*sealed);
  if (result.contains("error") && !result.contains("envelope")) {
    const Json& e = result["error"];
    return unavailable("action {} failed: {}", action,
                       (e.is_string() ? e.get<std::string>() : e.dump()).substr(0, 500));
  }
  auto parsed = protocol::InferResult::from_json(result);
  if (!parsed.ok()) return internal_error("action {} returned a malformed result: {}", action, parsed.status().message());
  return parsed;
}

class OpenWhiskInstance final : public Instance {
 public:
  OpenWhiskInstance(std::shared_ptr<OpenWhiskBackend::Shared> shared, std::string action)
      : shared_(std::move(shared)), action_(std::move(action)) {}
  ~OpenWhiskInstance() override { stop(); }

  std::string endpoint() const override { return "action " + action_; }

  Result<protocol::InferResult> invoke(std::string_view body, std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string what = "invoking action " + action_;
    // OpenWhisk's /run is JSON only: a binary envelope travels in its JSON form.
    std::string json_body;
    if (protocol::envelope_encoding(body) == protocol::EnvelopeEncoding::kBinary) {
      MOSS_ASSIGN_OR_RETURN(json_body, json_request_from_binary(body));
      body = json_body;
    }
    MOSS_ASSIGN_OR_RETURN(net::Response r,
                          shared_->call("POST",
                                        shared_->base + "/actions/" + percent_encode(action_) +
                                            "?blocking=true&result=true",
                                        std::string(body), /*fresh_connection=*/true));
    if (r.status == 200) {
      auto result = parse_answer(r.body, "action result");
      if (!result.ok()) return internal_error("action {} returned {}", action_, result.status().message());
      return result_or_error(*result, action_);
    }
    // 502: the action's result is an error (OpenWhisk's application error), possibly a sealed one.
    if (r.status == 502) {
      if (auto result = parse_answer(r.body, "action result"); result.ok()) {
        if (auto sealed = sealed_error_from_action_result(*result)) return std::move(*sealed);
      }
    }
    if (r.status != 202) return map_error(r, what);
    // The blocking wait ended before the action did: poll the activation record.
    auto accepted = parse_answer(r.body, "OpenWhisk 202 answer");
    Result<std::string> activation_id =
        accepted.ok() ? string_field(*accepted, "activationId", kMaxActivationIdBytes) : accepted.status();
    if (!activation_id.ok() || activation_id->empty()) {
      return internal_error("OpenWhisk answered 202 without an activationId for {}", action_);
    }
    const std::string id = std::move(activation_id).value();
    while (true) {
      if (std::chrono::steady_clock::now() >= deadline) {
        return deadline_exceeded("activation {} of action {} did not finish within {} ms", id,
                                 action_, timeout.count());
      }
      std::this_thread::sleep_for(shared_->options.poll_interval);
      MOSS_ASSIGN_OR_RETURN(net::Response a, shared_->call("GET", shared_->base + "/activations/" +
                                                                      percent_encode(id)));
      if (a.status == 404) continue;  // not recorded yet
      if (a.status != 200) return map_error(a, "reading activation " + id);
      auto record = parse_answer(a.body, "activation record");
      Result<const Json*> response =
          record.ok() ? object_field(*record, "response", kMaxAnswerFields) : record.status();
      if (!response.ok()) {
        return internal_error("activation {} has no response: {}", id, response.status().message());
      }
      const Json& resp = **response;
      const Json result = resp.contains("result") ? resp["result"] : Json::object();
      if (auto sealed = sealed_error_from_action_result(result)) return std::move(*sealed);
      auto success = bool_field_or(resp, "success", false);
      if (!success.ok()) return internal_error("activation {}: {}", id, success.status().message());
      if (!*success) {
        auto status = string_field_or(resp, "status", 64, "error");
        return unavailable("action {} failed ({}): {}", action_,
                           status.ok() ? *status : std::string("error"),
                           result.is_object() && result.contains("error")
                               ? result["error"].dump().substr(0, 500)
                               : std::string("no error text"));
      }
      return result_or_error(result, action_);
    }
  }

  void stop() override {
    if (stopped_.exchange(true)) return;
    auto r = shared_->call("DELETE", shared_->base + "/actions/" + percent_encode(action_));
    if (!r.ok() || (r->status != 200 && r->status != 404)) {
      log::get("packer")->warn("openwhisk delete failed action={} error=\"{}\"", action_,
                               r.ok() ? map_error(*r, "delete").message() : r.status().message());
    }
  }

 private:
  std::shared_ptr<OpenWhiskBackend::Shared> shared_;
  const std::string action_;
  std::atomic<bool> stopped_{false};
};

}  // namespace

OpenWhiskBackend::~OpenWhiskBackend() = default;

Result<std::unique_ptr<OpenWhiskBackend>> OpenWhiskBackend::create(
    OpenWhiskBackendOptions options) {
  MOSS_ASSIGN_OR_RETURN(net::Url url, net::parse_url(options.spec.api_host));
  if (options.auth.find(':') == std::string::npos) {
    return invalid_argument("OpenWhisk auth must be 'uuid:key'");
  }
  auto shared = std::make_shared<Shared>();
  net::ClientOptions co;
  co.host = url.host;
  co.port = url.port;
  co.read_timeout = options.request_timeout + std::chrono::seconds(5);
  if (url.tls()) {
    std::string ca_path =
        options.spec.ca_file.empty() ? "/etc/ssl/certs/ca-certificates.crt" : options.spec.ca_file;
    MOSS_ASSIGN_OR_RETURN(std::string ca, read_text_file(ca_path, 8 * 1024 * 1024));
    net::TlsClientConfig tls;
    tls.ca_pem = std::move(ca);
    MOSS_ASSIGN_OR_RETURN(co.tls, net::ClientTlsContext::create(std::move(tls)));
  }
  shared->client_options = co;
  shared->clients = std::make_unique<net::ClientPool>(co, 16);
  const std::string& auth = options.auth;
  shared->authorization =
      "Basic " + base64_encode(std::span<const uint8_t>(
                     reinterpret_cast<const uint8_t*>(auth.data()), auth.size()));
  shared->base = "/api/v1/namespaces/" + percent_encode(options.spec.ns);
  shared->options = std::move(options);
  return std::unique_ptr<OpenWhiskBackend>(new OpenWhiskBackend(std::move(shared)));
}

Result<InstancePtr> OpenWhiskBackend::start(const std::string& instance_id) {
  const OpenWhiskBackendOptions& o = shared_->options;
  std::string action = o.spec.action_prefix + "-" + instance_id;
  json params = json::array();
  for (const auto& [k, v] : o.worker_config) {
    std::string name = "MOSS_WORKER_";
    for (char c : k) name.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
    params.push_back({{"key", name}, {"value", v}, {"init", true}});
  }
  params.push_back({{"key", "MOSS_WORKER_MAX_CONCURRENCY"},
                    {"value", std::to_string(o.max_concurrency)},
                    {"init", true}});
  params.push_back({{"key", "MOSS_WORKER_MEMORY_BUDGET_MB"},
                    {"value", std::to_string(o.memory_mb)},
                    {"init", true}});
  json body = {{"exec", {{"kind", "blackbox"}, {"image", o.spec.image}}},
               {"limits",
                {{"concurrency", o.max_concurrency},
                 {"memory", o.memory_mb},
                 {"timeout", o.spec.timeout_ms}}},
               {"parameters", params}};
  MOSS_ASSIGN_OR_RETURN(
      net::Response r,
      shared_->call("PUT", shared_->base + "/actions/" + percent_encode(action) + "?overwrite=true",
                    body.dump()));
  if (r.status != 200) return map_error(r, "creating action " + action);
  return InstancePtr(std::make_unique<OpenWhiskInstance>(shared_, action));
}

}  // namespace moss::packer
