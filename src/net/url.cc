#include "net/url.h"

#include <charconv>

namespace moss::net {

Result<Url> parse_url(std::string_view url) {
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return invalid_argument("URL contains a space or control character");
  }
  Url out;
  auto sep = url.find("://");
  if (sep == std::string_view::npos) return invalid_argument("URL '{}' has no scheme", url);
  std::string_view scheme = url.substr(0, sep);
  if (scheme == "http") out.scheme = "http";
  else if (scheme == "https") out.scheme = "https";
  else return invalid_argument("URL scheme '{}' is not http or https", scheme);
  std::string_view rest = url.substr(sep + 3);
  size_t path_start = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_start);
  out.target = path_start == std::string_view::npos ? "/" : std::string(rest.substr(path_start));
  if (!out.target.empty() && out.target[0] == '?') out.target = "/" + out.target;
  if (authority.find('@') != std::string_view::npos)
    return invalid_argument("URL user-info is not supported");
  std::string_view host = authority, port;
  if (!authority.empty() && authority[0] == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return invalid_argument("URL has an unclosed '['");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return invalid_argument("URL has junk after ']'");
      port = after.substr(1);
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return invalid_argument("URL '{}' has no host", url);
  out.host = std::string(host);
  out.port = out.tls() ? 443 : 80;
  if (!port.empty()) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || p != port.data() + port.size() || value == 0 || value > 65535)
      return invalid_argument("URL port '{}' is not a number in 1..65535", port);
    out.port = static_cast<uint16_t>(value);
  }
  return out;
}

}  // namespace moss::net
