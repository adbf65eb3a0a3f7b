#include "common/host_port.h"

#include <charconv>

namespace moss {

Result<HostPort> parse_host_port(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return invalid_argument("'{}' is not host:port", text);
  }
  const std::string_view digits = text.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || port > 65535) {
    return invalid_argument("the port in '{}' is not a number in 0..65535", text);
  }
  return HostPort{std::string(text.substr(0, colon)), static_cast<uint16_t>(port)};
}

}  // namespace moss
