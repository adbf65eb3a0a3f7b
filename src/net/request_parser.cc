#include "net/request_parser.h"

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <cstdint>

#include "net/request_parser_beast.h"

namespace moss::net {
namespace detail {

void limit_request_parser(BeastRequestParser& parser, size_t max_header_bytes, size_t max_body_bytes) {
  parser.header_limit(static_cast<uint32_t>(std::min<size_t>(max_header_bytes, UINT32_MAX)));
  parser.body_limit(max_body_bytes);
}

Request request_from_message(BeastRequest&& message) {
  Request req;
  req.method = std::string(message.method_string());
  req.target = std::string(message.target());
  std::tie(req.path, req.query) = split_target(req.target);
  for (const auto& field : message) req.headers.add(field.name_string(), field.value());
  req.body = std::move(message.body());
  return req;
}

}  // namespace detail

Result<Request> parse_request(std::string_view bytes, size_t max_header_bytes, size_t max_body_bytes) {
  namespace http = boost::beast::http;
  detail::BeastRequestParser parser;
  detail::limit_request_parser(parser, max_header_bytes, max_body_bytes);
  boost::beast::error_code ec;
  // Fed in one piece, as a socket read of a small request would; put() consumes what it can and
  // needs the rest offered again.
  while (!bytes.empty() && !parser.is_done()) {
    size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec == http::error::need_more) break;
    if (ec == http::error::header_limit || ec == http::error::body_limit)
      return resource_exhausted("request exceeds a size limit: {}", ec.message());
    if (ec) return invalid_argument("malformed HTTP request: {}", ec.message());
    if (used == 0) break;
    bytes.remove_prefix(used);
  }
  if (!parser.is_done()) {
    ec = {};
    parser.put_eof(ec);
    if (ec || !parser.is_done()) return invalid_argument("incomplete HTTP request");
  }
  return detail::request_from_message(parser.release());
}

}  // namespace moss::net
