#include "keyservice/metrics.h"

#include <fmt/format.h>

namespace moss::keyservice {

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard lock(mu_);
  ++requests_[{endpoint, status}];
}

std::string Metrics::render(uint64_t audit_events, size_t connections_open) const {
  std::string out;
  out += "# HELP moss_keyservice_requests_total Requests answered, by endpoint and HTTP status.\n";
  out += "# TYPE moss_keyservice_requests_total counter\n";
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, n] : requests_) {
      out += fmt::format("moss_keyservice_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n",
                         key.first, key.second, n);
    }
  }
  auto counter = [&out](const char* name, const char* help, uint64_t v) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name, help, v);
  };
  counter("moss_keyservice_releases_total", "Key releases to attested workers.", releases.load());
  counter("moss_keyservice_release_denied_total", "Refused key releases.", release_denied.load());
  counter("moss_keyservice_rate_limited_total", "Requests refused by a rate limit.",
          rate_limited.load());
  counter("moss_keyservice_integrity_errors_total",
          "Stored values that did not unseal or authenticate (answered 500).", integrity_errors.load());
  counter("moss_keyservice_connection_attestations_total",
          "Connections on which a worker proved fresh evidence.", connection_attestations.load());
  counter("moss_keyservice_connection_attestations_refused_total",
          "Connection evidence that did not verify.", connection_attestations_refused.load());
  counter("moss_keyservice_audit_events_total", "Audit events written since start.", audit_events);
  out += fmt::format(
      "# HELP moss_keyservice_connections_open Open connections.\n"
      "# TYPE moss_keyservice_connections_open gauge\nmoss_keyservice_connections_open {}\n",
      connections_open);
  return out;
}

}  // namespace moss::keyservice
