// "host:port" as given in a listen setting, parsed into values (never by exceptions).
// Stateless; thread-safe.
#pragma once

#include "common/status.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace moss {

struct HostPort {
  std::string host;  // may be empty ("":8080 listens on every address, as the server decides)
  uint16_t port = 0;
};

// Splits at the last ':' ("[::1]:80" keeps its brackets in host); the port is 0..65535 in decimal
// digits only. Errors are invalid-argument and quote the text (a setting, not a secret).
Result<HostPort> parse_host_port(std::string_view text);

}  // namespace moss
