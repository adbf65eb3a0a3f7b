// URL parsing for client endpoints: "http(s)://host[:port][/path][?query]".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace moss::net {

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;    // DNS name or IP (IPv6 without brackets)
  uint16_t port = 0;   // explicit, or 80/443 by scheme
  std::string target;  // path plus query, "/" when absent

  bool tls() const { return scheme == "https"; }
};

// Rejects other schemes, user-info, empty hosts, bad ports, and control characters.
Result<Url> parse_url(std::string_view url);

}  // namespace moss::net
