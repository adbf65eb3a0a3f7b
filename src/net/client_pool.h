// ClientPool: a thread-safe set of keep-alive Clients to one endpoint.
//
// Each request borrows an idle connection (or opens a new one), so N threads calling at once use
// N connections and later calls reuse them; at most `max_idle` connections are kept between calls.
// Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "net/client.h"

namespace moss::net {

class ClientPool {
 public:
  explicit ClientPool(ClientOptions options, size_t max_idle = 8);

  // As Client::request. When `peer` is given it receives the identity the verification hook
  // returned for the connection that carried this request.
  Result<Response> request(const Request& request, std::shared_ptr<const PeerIdentity>* peer = nullptr);
  Result<Response> get(std::string target);
  Result<Response> post(std::string target, std::string body,
                        std::string_view content_type = "application/json");

  size_t idle_connections() const;
  // Connections opened by every client of the pool so far.
  uint64_t connections_opened() const;
  const ClientOptions& options() const { return options_; }

 private:
  const ClientOptions options_;
  const size_t max_idle_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Client>> idle_;  // guarded by mu_
  uint64_t opened_retired_ = 0;                // guarded by mu_: opened by clients since dropped
};

}  // namespace moss::net
