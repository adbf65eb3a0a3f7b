// Client internals: synchronous calls built from Beast's asynchronous operations, each run to
// completion on the client's private io_context, so every step gets a real timeout
// (beast::tcp_stream::expires_after) without extra threads.
#include "net/client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

#include "net/direct_body.h"
#include "net/tls_context.h"

namespace moss::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct ClientTlsContext::Impl {
  detail::TlsContextPtr tls;
};

ClientTlsContext::ClientTlsContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClientTlsContext::~ClientTlsContext() = default;

Result<std::shared_ptr<const ClientTlsContext>> ClientTlsContext::create(TlsClientConfig config) {
  auto impl = std::make_unique<Impl>();
  MOSS_ASSIGN_OR_RETURN(impl->tls, detail::make_client_tls(config));
  config.key_pem.wipe();
  return std::shared_ptr<const ClientTlsContext>(new ClientTlsContext(std::move(impl)));
}

struct Client::Impl {
  explicit Impl(ClientOptions opts) : options(std::move(opts)) {}

  ClientOptions options;
  asio::io_context ioc;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  // Stable address: OpenSSL's verify callback writes into it during the handshake.
  std::unique_ptr<detail::PeerVerifyState> verify;
  beast::flat_buffer buffer;
  uint64_t opened = 0;
  std::vector<uint8_t> exporter;  // of the current TLS connection
  bool reused = false;  // the current connection already carried a response

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  bool is_open() { return (tls || plain) && lowest().socket().is_open(); }

  // Runs one asynchronous operation to completion on this thread.
  template <typename Start>
  beast::error_code run(Start&& start) {
    beast::error_code result = asio::error::would_block;
    ioc.restart();
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.run();
    return result;
  }

  Status io_error(std::string_view what, beast::error_code ec) const {
    if (ec == beast::error::timeout)
      return deadline_exceeded("{} {}:{} timed out", what, options.host, options.port);
    return unavailable("{} {}:{} failed: {}", what, options.host, options.port, ec.message());
  }

  void close() {
    if (tls || plain) {
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
      lowest().close();
    }
    tls.reset();
    plain.reset();
    buffer.clear();
    reused = false;
  }

  Status connect();
  // `retryable` is set when the failure happened on a reused connection before any response byte
  // arrived: the server most likely closed the idle connection.
  Result<Response> exchange(const Request& req, bool* retryable);
  template <typename Stream>
  Result<Response> exchange_on(Stream& stream, const Request& req, bool* retryable);
};

Status Client::Impl::connect() {
  close();
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(options.host, std::to_string(options.port),
                                    tcp::resolver::numeric_service, ec);
  if (ec) return unavailable("resolving {} failed: {}", options.host, ec.message());
  if (options.tls) {
    const detail::TlsContext& ctx = *options.tls->impl().tls;
    tls.emplace(ioc, const_cast<asio::ssl::context&>(ctx.ctx));
    verify = std::make_unique<detail::PeerVerifyState>();
    detail::attach_verify_state(tls->native_handle(), verify.get());
    MOSS_RETURN_IF_ERROR(detail::configure_client_ssl(tls->native_handle(), ctx, options.host));
  } else {
    plain.emplace(ioc);
    verify.reset();
  }
  lowest().expires_after(options.connect_timeout);
  ec = run([&](auto handler) { lowest().async_connect(endpoints, std::move(handler)); });
  if (ec) {
    close();
    return io_error("connecting to", ec);
  }
  beast::error_code nodelay_ec;
  lowest().socket().set_option(tcp::no_delay(true), nodelay_ec);
  if (tls) {
    ec = run([&](auto handler) { tls->async_handshake(asio::ssl::stream_base::client, std::move(handler)); });
    if (ec) {
      std::string why = verify->error;
      close();
      if (!why.empty()) return unauthenticated("TLS peer {}:{}: {}", options.host, options.port, why);
      return io_error("TLS handshake with", ec);
    }
  }
  ++opened;
  if (!options.on_connect) return Status::Ok();
  NewConnection setup;
  std::vector<uint8_t> local_der;
  if (tls) {
    auto exported = detail::connection_exporter(tls->native_handle());
    if (!exported.ok()) {
      close();
      return exported.status();
    }
    exporter = std::move(exported).value();
    local_der = detail::local_certificate_der(tls->native_handle());
    setup.tls_exporter = exporter;
    setup.local_certificate_der = local_der;
    setup.peer = verify->identity;
  }
  setup.send = [this](const Request& r) -> Result<Response> {
    if (!is_open()) return unavailable("connection to {}:{} closed during set-up", options.host, options.port);
    bool retryable = false;
    return tls ? exchange_on(*tls, r, &retryable) : exchange_on(*plain, r, &retryable);
  };
  Status hooked = options.on_connect(setup);
  if (!hooked.ok()) {
    close();
    return hooked;
  }
  if (!is_open()) return unavailable("connection to {}:{} closed during set-up", options.host, options.port);
  return Status::Ok();
}

template <typename Stream>
Result<Response> Client::Impl::exchange_on(Stream& stream, const Request& req, bool* retryable) {
  // A span body: the request's bytes are written from where they are, not copied.
  http::request<http::span_body<const char>> msg;
  http::verb verb = http::string_to_verb(req.method);
  if (verb == http::verb::unknown) msg.method_string(req.method);
  else msg.method(verb);
  msg.target(req.target.empty() ? std::string_view("/") : std::string_view(req.target));
  msg.version(11);
  for (const auto& [name, value] : req.headers.fields()) {
    if (name.find_first_of("\r\n") != std::string::npos || value.find_first_of("\r\n") != std::string::npos)
      return invalid_argument("request header '{}' contains CR or LF", name.substr(0, 64));
    msg.insert(name, value);
  }
  if (!req.headers.contains("Host")) {
    bool default_port = options.port == (options.tls ? 443 : 80);
    bool ipv6 = options.host.find(':') != std::string::npos;
    std::string host = ipv6 ? "[" + options.host + "]" : options.host;
    msg.set(http::field::host, default_port ? host : fmt::format("{}:{}", host, options.port));
  }
  if (!req.headers.contains("User-Agent")) msg.set(http::field::user_agent, options.user_agent);
  msg.body() = {req.body.data(), req.body.size()};
  msg.keep_alive(true);
  msg.prepare_payload();

  lowest().expires_after(options.write_timeout);
  beast::error_code ec = run([&](auto handler) { http::async_write(stream, msg, std::move(handler)); });
  if (ec) {
    *retryable = reused;
    return io_error("sending request to", ec);
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(options.max_response_body_bytes);
  parser.header_limit(static_cast<uint32_t>(std::min<size_t>(options.max_response_header_bytes, UINT32_MAX)));
  lowest().expires_after(options.read_timeout);
  // Header first: Beast 1.74 skips the Content-Length body-limit check when header and body
  // arrive in one eager read.
  ec = run([&](auto handler) { http::async_read_header(stream, buffer, parser, std::move(handler)); });
  if (!ec && !parser.is_done()) {
    const auto length = parser.content_length();
    if (length && *length > options.max_response_body_bytes) {
      ec = http::error::body_limit;  // checked before the direct read sizes a buffer from it
    } else if (length && *length >= detail::kDirectBodyMin) {
      std::string& body = parser.get().body();
      const size_t buffered = detail::begin_direct_body(buffer, body, *length);
      ec = run([&](auto handler) {
        asio::async_read(stream, asio::buffer(body.data() + buffered, *length - buffered), std::move(handler));
      });
    } else {
      ec = run([&](auto handler) { http::async_read(stream, buffer, parser, std::move(handler)); });
    }
  }
  if (ec) {
    *retryable = reused && !parser.got_some() && ec != beast::error::timeout;
    if (ec == http::error::body_limit)
      return resource_exhausted("response from {}:{} larger than {} bytes", options.host, options.port,
                                options.max_response_body_bytes);
    if (ec == http::error::header_limit)
      return resource_exhausted("response headers from {}:{} too large", options.host, options.port);
    return io_error("reading response from", ec);
  }
  auto res = parser.release();
  Response out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) out.headers.add(field.name_string(), field.value());
  out.body = std::move(res.body());
  if (res.keep_alive()) reused = true;
  else close();
  return out;
}

Result<Response> Client::Impl::exchange(const Request& req, bool* retryable) {
  *retryable = false;
  // A connection verified with a (short-lived) certificate that has since expired is not reused.
  if (is_open() && verify && verify->peer_certificate_expired(std::time(nullptr))) close();
  if (!is_open()) {
    // Nothing of the request was written yet, whatever failed (resolve, connect, handshake, hook).
    if (Status s = connect(); !s.ok()) return std::move(s).with_request_not_sent();
  }
  Result<Response> r = tls ? exchange_on(*tls, req, retryable) : exchange_on(*plain, req, retryable);
  if (!r.ok() && r.status().code() != ErrorCode::kInvalidArgument) close();
  return r;
}

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Client::~Client() {
  if (impl_) impl_->close();
}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

Result<Client> Client::for_url(std::string_view url, ClientOptions options) {
  MOSS_ASSIGN_OR_RETURN(Url parsed, parse_url(url));
  if (parsed.tls() && !options.tls)
    return invalid_argument("https URL {} needs a TLS configuration (CA bundle or hook)", url);
  if (!parsed.tls() && options.tls)
    return invalid_argument("URL {} is plain http but a TLS configuration was given", url);
  options.host = parsed.host;
  options.port = parsed.port;
  return Client(std::move(options));
}

Result<Response> Client::request(const Request& request) {
  bool retryable = false;
  Result<Response> r = impl_->exchange(request, &retryable);
  if (!r.ok() && retryable) {
    // The first try may have reached the server: a failed resend no longer proves "not sent".
    r = impl_->exchange(request, &retryable);
    if (!r.ok() && r.status().request_not_sent()) {
      return Status(r.status().code(), r.status().message(), r.status().reason());
    }
  }
  return r;
}

Result<Response> Client::get(std::string target) { return request(Request::make("GET", std::move(target))); }

Result<Response> Client::post(std::string target, std::string body, std::string_view content_type) {
  return request(Request::make("POST", std::move(target), std::move(body), content_type));
}

Status Client::connect() { return impl_->is_open() ? Status::Ok() : impl_->connect(); }
void Client::close() { impl_->close(); }
bool Client::connected() const { return impl_->is_open(); }

std::shared_ptr<const PeerIdentity> Client::peer() const {
  return impl_->verify ? impl_->verify->identity : nullptr;
}

uint16_t Client::local_port() const {
  if (!impl_->is_open()) return 0;
  beast::error_code ec;
  auto ep = impl_->lowest().socket().local_endpoint(ec);
  return ec ? 0 : ep.port();
}

uint64_t Client::connections_opened() const { return impl_->opened; }
const ClientOptions& Client::options() const { return impl_->options; }

void Client::set_timeouts(std::chrono::milliseconds connect, std::chrono::milliseconds write,
                          std::chrono::milliseconds read) {
  impl_->options.connect_timeout = connect;
  impl_->options.write_timeout = write;
  impl_->options.read_timeout = read;
}

}  // namespace moss::net
