#include "net/failover_client.h"

#include "common/logging.h"
#include "common/strict_json.h"
#include "net/url.h"

#include <algorithm>

namespace moss::net {

namespace {

using std::chrono::milliseconds;

constexpr size_t kMaxUrls = 64;

// Worth another URL: the attempt reached nobody, lost its connection, timed out, or the service
// said it cannot serve now.
bool moves_on(const Result<Response>& r) {
  if (!r.ok()) {
    return r.status().code() == ErrorCode::kUnavailable ||
           r.status().code() == ErrorCode::kDeadlineExceeded;
  }
  return r->status >= 500;
}

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

}  // namespace

Result<std::vector<std::string>> parse_url_list(std::string_view text) {
  std::vector<std::string> urls;
  const std::string t = trim(text);
  if (!t.empty() && t[0] == '[') {
    MOSS_ASSIGN_OR_RETURN(auto j, parse_json_strict(t, "URL list", 2));
    if (!j.is_array()) return invalid_argument("URL list must be a JSON array of strings");
    for (const auto& u : j) {
      if (!u.is_string()) return invalid_argument("URL list must be a JSON array of strings");
      urls.push_back(trim(u.get<std::string>()));
    }
  } else {
    for (size_t at = 0; at <= t.size();) {
      size_t comma = std::min(t.find(',', at), t.size());
      urls.push_back(trim(std::string_view(t).substr(at, comma - at)));
      at = comma + 1;
    }
  }
  if (urls.empty() || (urls.size() == 1 && urls[0].empty())) return invalid_argument("URL list is empty");
  if (urls.size() > kMaxUrls) return invalid_argument("URL list has more than {} URLs", kMaxUrls);
  for (const std::string& u : urls) {
    auto parsed = parse_url(u);
    if (!parsed.ok()) return parsed.status().with_context("URL list");
  }
  return urls;
}

Result<FailoverClient> FailoverClient::create(FailoverOptions options) {
  if (options.urls.empty()) return invalid_argument("a failover client needs at least one URL");
  std::vector<Client> clients;
  for (const std::string& url : options.urls) {
    MOSS_ASSIGN_OR_RETURN(Client c, Client::for_url(url, options.client));
    clients.push_back(std::move(c));
  }
  return FailoverClient(std::move(options), std::move(clients));
}

Result<Response> FailoverClient::run(const std::function<Result<Response>(Client&)>& attempt) {
  const auto deadline = std::chrono::steady_clock::now() + options_.deadline;
  const ClientOptions& o = options_.client;
  std::optional<Result<Response>> last;
  size_t last_url = current_;
  for (size_t tried = 0; tried < clients_.size(); ++tried) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= milliseconds(0)) break;
    Client& c = clients_[current_];
    c.set_timeouts(std::min(o.connect_timeout, left), std::min(o.write_timeout, left),
                   std::min(o.read_timeout, left));
    Result<Response> r = attempt(c);
    if (!moves_on(r)) return r;
    if (!r.ok()) c.close();  // a fresh connection next time this URL comes round
    log::get("net")->warn("failover from={} after=\"{}\"", options_.urls[current_],
                          r.ok() ? fmt::format("HTTP {}", r->status) : r.status().to_string());
    last_url = current_;
    if (clients_.size() > 1) {
      current_ = (current_ + 1) % clients_.size();
      ++failovers_;
    }
    last = std::move(r);
  }
  if (!last) return deadline_exceeded("no time left for a request (deadline {} ms)", options_.deadline.count());
  if (last->ok()) {
    // Every URL failed and a 5xx is the answer returned: current() is the replica that gave it, so
    // a caller's follow-up about that answer (a fork-check proof) asks the same replica.
    current_ = last_url;
    return std::move(*last);
  }
  const Status& s = last->status();
  if (std::chrono::steady_clock::now() >= deadline) {
    return deadline_exceeded("deadline of {} ms passed; last attempt: {}", options_.deadline.count(), s.message());
  }
  return Status(s.code(), fmt::format("all {} URLs failed; last: {}", clients_.size(), s.message()));
}

Result<Response> FailoverClient::call(const MakeRequest& make) {
  return run([&](Client& c) -> Result<Response> {
    MOSS_ASSIGN_OR_RETURN(Request r, make());
    return c.request(r);
  });
}

Result<Response> FailoverClient::request(const Request& request) {
  return run([&](Client& c) { return c.request(request); });
}

Status FailoverClient::connect() {
  return run([](Client& c) -> Result<Response> {
           MOSS_RETURN_IF_ERROR(c.connect());
           return Response{};
         }).status();
}

}  // namespace moss::net
