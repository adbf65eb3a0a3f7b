#include "net/client_pool.h"

namespace moss::net {

ClientPool::ClientPool(ClientOptions options, size_t max_idle)
    : options_(std::move(options)), max_idle_(max_idle) {}

Result<Response> ClientPool::request(const Request& request, std::shared_ptr<const PeerIdentity>* peer) {
  std::unique_ptr<Client> client;
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      client = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!client) client = std::make_unique<Client>(options_);
  Result<Response> r = client->request(request);
  if (peer) *peer = r.ok() ? client->peer() : nullptr;
  std::lock_guard lock(mu_);
  if (client->connected() && idle_.size() < max_idle_) idle_.push_back(std::move(client));
  else opened_retired_ += client->connections_opened();
  return r;
}

Result<Response> ClientPool::get(std::string target) { return request(Request::make("GET", std::move(target))); }

Result<Response> ClientPool::post(std::string target, std::string body, std::string_view content_type) {
  return request(Request::make("POST", std::move(target), std::move(body), content_type));
}

size_t ClientPool::idle_connections() const {
  std::lock_guard lock(mu_);
  return idle_.size();
}

uint64_t ClientPool::connections_opened() const {
  std::lock_guard lock(mu_);
  uint64_t total = opened_retired_;
  for (const auto& c : idle_) total += c->connections_opened();
  return total;
}

}  // namespace moss::net
