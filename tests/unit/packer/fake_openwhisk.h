// An in-test OpenWhisk controller: the REST endpoints the OpenWhisk backend uses, as OpenWhisk's
// API documentation defines them (there is no OpenWhisk here):
//   PUT    /api/v1/namespaces/{ns}/actions/{name}?overwrite=true   create or update an action
//   POST   /api/v1/namespaces/{ns}/actions/{name}?blocking=true&result=true   invoke
//          200 + the result, or 202 {"activationId"} when the blocking wait times out,
//          502 + the result when the action returned {"error": ...}
//   GET    /api/v1/namespaces/{ns}/activations/{id}   404 until done, then the activation record
//   DELETE /api/v1/namespaces/{ns}/actions/{name}
// Every call needs basic auth with the configured "uuid:key". The "action" answers like a worker:
// it echoes the envelope with run kind warm and an instance status.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "common/encoding.h"
#include "net/error_response.h"
#include "net/server.h"

namespace moss::packer::testing {

class FakeOpenWhisk {
 public:
  explicit FakeOpenWhisk(std::string auth) : auth_(std::move(auth)) {
    using nlohmann::json;
    net::Router router;
    const std::string base = "/api/v1/namespaces/{ns}";
    router.put(base + "/actions/{name}", [this](const net::Request& r) {
      if (auto denied = check_auth(r)) return *denied;
      json body = json::parse(r.body, nullptr, false);
      if (!body.is_object() || !body.contains("exec")) {
        return error(400, "The request content was malformed");
      }
      std::lock_guard lock(mu_);
      bool exists = actions_.count(std::string(r.param("name")));
      if (exists && r.query_param("overwrite") != "true")
        return error(409, "resource already exists");
      actions_[std::string(r.param("name"))] = body;
      namespaces_.push_back(std::string(r.param("ns")));
      return net::Response::json(200, json{{"name", r.param("name")},
                                           {"namespace", r.param("ns")},
                                           {"exec", body["exec"]},
                                           {"limits", body.value("limits", json::object())}}
                                          .dump());
    });
    router.post(base + "/actions/{name}", [this](const net::Request& r) {
      if (auto denied = check_auth(r)) return *denied;
      std::string name(r.param("name"));
      json params = json::parse(r.body.empty() ? "{}" : r.body, nullptr, false);
      std::lock_guard lock(mu_);
      if (!actions_.count(name)) return error(404, "The requested resource does not exist.");
      ++invocations_;
      last_params_ = params;
      if (throttle_) return error(429, "Too many requests in the last minute");
      const std::string model = params.value("model_id", "");
      // A verbatim answer the test chose (e.g. JSON that is not quite JSON).
      if (auto raw = raw_answers_.find(model); raw != raw_answers_.end()) {
        return net::Response::json(raw->second.first, raw->second.second);
      }
      // "test/sealed": the worker's sealed error, as OpenWhisk records it (only `error` is kept).
      json result = model == "test/fail"
                        ? json{{"error", "no grant for test/fail"}}
                        : model == "test/sealed"
                        ? json{{"error", {{"code", "invalid-argument"},
                                          {"category", "bad-input"},
                                          {"message", "bad-input: sealed"},
                                          {"envelope", params.value("envelope", "")}}}}
                        : json{{"envelope", params.value("envelope", "")},
                               {"run", "warm"},
                               {"timing_ms", {{"inference", 3}, {"total", 4}}},
                               {"instance",
                                {{"instance_id", name},
                                 {"in_flight", 0},
                                 {"memory_used_bytes", 1024},
                                 {"models", json::array()}}}};
      bool ok = !result.contains("error");
      if (async_polls_ > 0) {
        std::string id = "act" + std::to_string(next_activation_++);
        pending_[id] = {async_polls_, result, ok};
        return net::Response::json(202, json{{"activationId", id}}.dump());
      }
      return net::Response::json(ok ? 200 : 502, result.dump());
    });
    router.get(base + "/activations/{id}", [this](const net::Request& r) {
      if (auto denied = check_auth(r)) return *denied;
      std::lock_guard lock(mu_);
      ++polls_;
      if (auto raw = raw_records_.find(std::string(r.param("id"))); raw != raw_records_.end()) {
        return net::Response::json(200, raw->second);
      }
      auto it = pending_.find(std::string(r.param("id")));
      if (it == pending_.end()) return error(404, "The requested resource does not exist.");
      if (--it->second.polls_left > 0) return error(404, "The requested resource does not exist.");
      json record = {{"activationId", it->first},
                     {"response",
                      {{"status", it->second.ok ? "success" : "application error"},
                       {"success", it->second.ok},
                       {"result", it->second.result}}}};
      return net::Response::json(200, record.dump());
    });
    router.del(base + "/actions/{name}", [this](const net::Request& r) {
      if (auto denied = check_auth(r)) return *denied;
      std::lock_guard lock(mu_);
      if (!actions_.erase(std::string(r.param("name")))) {
        return error(404, "The requested resource does not exist.");
      }
      ++deletes_;
      return net::Response::json(200, "{}");
    });
    net::ServerOptions options;
    options.worker_threads = 8;
    server_ = net::Server::start(std::move(options), std::move(router)).value_or_die();
  }

  uint16_t port() const { return server_->port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

  // Invocations answer 202 and complete after `polls` activation reads.
  void set_async(int polls) {
    std::lock_guard l(mu_);
    async_polls_ = polls;
  }
  // Invoking with model_id `model` answers `status` with `body` verbatim.
  void answer_raw(std::string model, int status, std::string body) {
    std::lock_guard l(mu_);
    raw_answers_[std::move(model)] = {status, std::move(body)};
  }
  // Reading activation `id` answers 200 with `body` verbatim.
  void record_raw(std::string id, std::string body) {
    std::lock_guard l(mu_);
    raw_records_[std::move(id)] = std::move(body);
  }
  void set_throttle(bool on) {
    std::lock_guard l(mu_);
    throttle_ = on;
  }
  nlohmann::json action(const std::string& name) {
    std::lock_guard l(mu_);
    auto it = actions_.find(name);
    return it == actions_.end() ? nlohmann::json() : it->second;
  }
  size_t action_count() {
    std::lock_guard l(mu_);
    return actions_.size();
  }
  int invocations() {
    std::lock_guard l(mu_);
    return invocations_;
  }
  int polls() {
    std::lock_guard l(mu_);
    return polls_;
  }
  int deletes() {
    std::lock_guard l(mu_);
    return deletes_;
  }
  nlohmann::json last_params() {
    std::lock_guard l(mu_);
    return last_params_;
  }
  std::vector<std::string> namespaces() {
    std::lock_guard l(mu_);
    return namespaces_;
  }

 private:
  struct Pending {
    int polls_left;
    nlohmann::json result;
    bool ok;
  };

  static net::Response error(int status, std::string message) {
    return net::Response::json(status, nlohmann::json{{"error", message}, {"code", "fake"}}.dump());
  }

  std::optional<net::Response> check_auth(const net::Request& r) const {
    std::string expected =
        "Basic " + base64_encode(std::span<const uint8_t>(
                       reinterpret_cast<const uint8_t*>(auth_.data()), auth_.size()));
    if (r.headers.get_or("Authorization", "") != expected) {
      return error(401, "The supplied authentication is invalid");
    }
    return std::nullopt;
  }

  const std::string auth_;
  std::mutex mu_;
  std::map<std::string, nlohmann::json> actions_;
  std::map<std::string, Pending> pending_;
  std::map<std::string, std::pair<int, std::string>> raw_answers_;
  std::map<std::string, std::string> raw_records_;
  std::vector<std::string> namespaces_;
  nlohmann::json last_params_;
  int async_polls_ = 0;
  bool throttle_ = false;
  int invocations_ = 0;
  int polls_ = 0;
  int deletes_ = 0;
  int next_activation_ = 1;
  net::ServerPtr server_;
};

}  // namespace moss::packer::testing
