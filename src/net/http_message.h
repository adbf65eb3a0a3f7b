// HTTP request and response values shared by the server, the client and handlers.
//
// Plain value types (not thread-safe, cheap to move); no Boost types, so every part can include
// this header without compiling Beast.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/connection_context.h"
#include "net/peer_identity.h"

namespace moss::net {

// Header fields in arrival order; names compare case-insensitively (RFC 9110).
class Headers {
 public:
  // The first value of `name`, or nullopt.
  std::optional<std::string_view> get(std::string_view name) const;
  // The first value of `name`, or `fallback`.
  std::string_view get_or(std::string_view name, std::string_view fallback) const;
  bool contains(std::string_view name) const { return get(name).has_value(); }
  // Replaces every field named `name` with one field.
  void set(std::string_view name, std::string_view value);
  // Appends a field (repeated fields such as Set-Cookie).
  void add(std::string_view name, std::string_view value);
  void remove(std::string_view name);

  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }
  size_t size() const { return fields_.size(); }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

bool iequals(std::string_view a, std::string_view b);

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: path plus optional "?query"
  std::string path;    // target before '?', not percent-decoded
  std::string query;   // target after '?', without the '?'
  Headers headers;
  std::string body;

  // Server side only.
  std::string remote_address;                  // "127.0.0.1:53422"
  std::shared_ptr<const PeerIdentity> peer;    // set when the peer-verification hook accepted
  std::shared_ptr<ConnectionContext> connection;  // the connection it arrived on (never null from Server)
  std::map<std::string, std::string> path_params;  // filled by Router for "/v1/models/{id}"

  // A percent-decoded query parameter ("a=1&b=x%20y"), or nullopt.
  std::optional<std::string> query_param(std::string_view name) const;
  // The path parameter filled by the router, or "" when absent.
  std::string_view param(std::string_view name) const;

  // Client side: builds method + target (+ body), e.g. Request::make("GET", "/healthz").
  static Request make(std::string method, std::string target, std::string body = {},
                      std::string_view content_type = {});
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;

  // Body with Content-Type application/json (the body must already be JSON text).
  static Response json(int status, std::string body);
  static Response text(int status, std::string body);
};

// Splits a target into path and query.
std::pair<std::string, std::string> split_target(std::string_view target);

// Percent-decodes (and '+' -> ' ' when `plus_is_space`); invalid escapes are kept verbatim.
std::string percent_decode(std::string_view in, bool plus_is_space);

}  // namespace moss::net
