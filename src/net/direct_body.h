// Reading a large HTTP body of known length straight into its string (server requests and client
// responses): one copy, the kernel's, instead of 16-64 KiB reads through Beast's parser buffer.
// Several times faster for the megabyte-sized inputs, outputs and model files MOSS moves.
// Internal to net (includes Boost).
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <algorithm>
#include <cstdint>
#include <string>

namespace moss::net::detail {

// Bodies from this size on (with Content-Length; callers check it against their body limit
// first, since the buffer is sized from it).
inline constexpr uint64_t kDirectBodyMin = 64 * 1024;

// Sizes `body` to `length`, moves in what `buffer` already holds of it, and returns how many
// bytes are in place: read the rest into body.data() + that.
inline size_t begin_direct_body(boost::beast::flat_buffer& buffer, std::string& body, size_t length) {
  const size_t buffered = std::min(buffer.size(), length);
  body.resize(length);
  boost::asio::buffer_copy(boost::asio::buffer(body.data(), buffered), buffer.data());
  buffer.consume(buffered);
  return buffered;
}

}  // namespace moss::net::detail
