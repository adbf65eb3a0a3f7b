// The server's HTTP request parsing, callable on a complete request held in memory: the same
// Beast parser with the same limits and the same conversion to Request that Server applies to
// bytes read from a socket. For fuzzing and tests; the server itself streams (server.cc).
// Stateless: thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

#include "common/status.h"
#include "net/http_message.h"

namespace moss::net {

// Parses exactly one request from `bytes`. invalid-argument for malformed or incomplete input,
// resource-exhausted for a header block above `max_header_bytes` or a body above
// `max_body_bytes` (the server answers these 400, 431 and 413).
Result<Request> parse_request(std::string_view bytes, size_t max_header_bytes, size_t max_body_bytes);

}  // namespace moss::net
