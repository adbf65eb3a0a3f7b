// FailoverClient: one logical service behind several URLs (KeyService replicas), one keep-alive
// Client per URL, used one at a time. A call goes to the URL that answered last; it moves to the
// next URL (in list order, each at most once per call) when the attempt
//   - could not connect or lost the connection (unavailable), or timed out (deadline-exceeded);
//   - was answered 5xx (the replica, or its store, cannot serve now);
// and never when it was answered 4xx (a refusal is the service's answer: every replica gives the
// same one) or when the peer failed verification (unauthenticated: an attestation failure is not
// a reason to try elsewhere; it is reported at once). Each call has a deadline across all its
// attempts; every attempt's timeouts are clipped to what is left of it. The request is built
// again for every attempt, so signed requests get a fresh signature (time and nonce) per replica.
// A resent request may have been applied by the replica that then failed to answer: callers keep
// their requests idempotent (MOSS's signed requests are).
// Errors: the last attempt's (a 5xx comes back as that response, and current() is then the URL
// that gave it), or deadline-exceeded.
// Not thread-safe (one connection at a time); create one per thread.
#pragma once

#include "common/status.h"
#include "net/client.h"

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace moss::net {

// A list of URLs: a JSON array of strings, or comma-separated text (spaces around commas allowed).
// invalid-argument when empty or an entry is not a valid URL.
Result<std::vector<std::string>> parse_url_list(std::string_view text);

struct FailoverOptions {
  std::vector<std::string> urls;                // "http(s)://host:port", tried in this order
  ClientOptions client;                         // host and port come from each URL
  std::chrono::milliseconds deadline{30'000};   // per call, across every URL tried
};

class FailoverClient {
 public:
  static Result<FailoverClient> create(FailoverOptions options);

  // Builds the request for one attempt (called once per URL tried).
  using MakeRequest = std::function<Result<Request>()>;
  Result<Response> call(const MakeRequest& make);
  Result<Response> request(const Request& request);
  // Connects now (failing over like a call) if the current URL is not connected.
  Status connect();

  Client& current() { return clients_[current_]; }
  const Client& current() const { return clients_[current_]; }
  const std::string& current_url() const { return options_.urls[current_]; }
  // Moves taken to another URL so far (for tests and metrics).
  uint64_t failovers() const { return failovers_; }

 private:
  FailoverClient(FailoverOptions options, std::vector<Client> clients)
      : options_(std::move(options)), clients_(std::move(clients)) {}
  // Runs `attempt` on each URL from the current one until one does not ask to move on.
  Result<Response> run(const std::function<Result<Response>(Client&)>& attempt);

  FailoverOptions options_;
  std::vector<Client> clients_;
  size_t current_ = 0;
  uint64_t failovers_ = 0;
};

}  // namespace moss::net
