// INTERNAL to moss_net (includes Beast): the request parser set-up and the conversion from a
// parsed Beast message to Request, shared by server.cc and request_parser.cc so that fuzzing
// parse_request exercises what the server runs.
#pragma once

#include <boost/beast/http.hpp>

#include "net/http_message.h"

namespace moss::net::detail {

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;
using BeastRequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Applies the server's header and body limits to a fresh parser.
void limit_request_parser(BeastRequestParser& parser, size_t max_header_bytes, size_t max_body_bytes);

// Method, target (split into path and query), headers and body of a parsed message.
Request request_from_message(BeastRequest&& message);

}  // namespace moss::net::detail
