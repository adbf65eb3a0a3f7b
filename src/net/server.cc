// Server internals. Each connection is a Session on its own strand; its lifecycle is
//   [TLS handshake] -> read request (header, then body) -> handler on the worker pool ->
//   write response -> read next request (keep-alive) or close.
// Sessions register with the server so that stop() can reach them.
#include "net/server.h"

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "common/log_throttle.h"
#include "common/logging.h"
#include "net/direct_body.h"
#include "net/error_response.h"
#include "net/request_parser_beast.h"
#include "net/tls_context.h"

namespace moss::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Bytes and time spent discarding an unread request body after an early error response, so the
// client reads the response instead of a connection reset (a "lingering close").
constexpr size_t kLingerMaxBytes = 1 << 20;
constexpr auto kLingerTime = std::chrono::milliseconds(1000);
constexpr size_t kReadChunk = 16 * 1024;

class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  virtual void begin_stop() = 0;   // any thread
  virtual void force_close() = 0;  // any thread
};

bool has_crlf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

}  // namespace

struct Server::Impl {
  explicit Impl(ServerOptions opts)
      : options(std::move(opts)), log(moss::log::get("net")), acceptor(asio::make_strand(ioc)) {}

  ServerOptions options;
  std::function<Response(Request&)> handler;
  detail::TlsContextPtr tls;
  std::shared_ptr<spdlog::logger> log;
  uint16_t port = 0;

  std::atomic<uint64_t> accepted{0}, refused{0}, served{0};
  std::atomic<size_t> open{0};
  std::atomic<bool> stopping{false};

  std::mutex mu;  // guards sessions, stopped, per_peer
  std::condition_variable all_closed;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;
  std::unordered_map<std::string, size_t> per_peer;  // open connections per remote IP address
  std::atomic<size_t> pending{0};                    // connections before their handshake
  moss::log::LogThrottle refusal_log{5, std::chrono::seconds(10)};
  bool stopped = false;

  // Declared after the registry: destroying the io_context destroys queued handlers that still
  // own sessions, whose destructors deregister above.
  asio::io_context ioc;
  tcp::acceptor acceptor;
  // Keeps the I/O threads running while no socket operation is pending (e.g. the acceptor is
  // closed and every open session waits for its handler on the pool).
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::unique_ptr<asio::steady_timer> accept_backoff;
  std::unique_ptr<asio::thread_pool> pool;
  std::vector<std::thread> io_threads;

  Status listen();
  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  Response run_handler(Request& req);
  void register_session(const std::shared_ptr<SessionBase>& s) {
    std::lock_guard lock(mu);
    sessions[s.get()] = s;
  }
  void session_closed(SessionBase* s, const std::string& peer_address) {
    {
      // Under the lock, so stop() cannot miss the wake-up between its check and its wait.
      std::lock_guard lock(mu);
      sessions.erase(s);
      if (auto it = per_peer.find(peer_address); it != per_peer.end() && --it->second == 0) per_peer.erase(it);
      open.fetch_sub(1);
    }
    all_closed.notify_all();
  }
  // Admits a new connection from `peer_address` against the limits, counting it open and
  // pending; the reason for a refusal otherwise.
  std::optional<std::string_view> admit(const std::string& peer_address) {
    std::lock_guard lock(mu);
    if (open.load() >= options.max_connections) return "max_connections";
    const size_t reserve = std::min(options.reserved_connections, options.max_connections / 4);
    if (pending.load() >= options.max_connections - reserve) return "handshake_reserve";
    size_t& from_peer = per_peer[peer_address];
    if (from_peer >= options.max_connections_per_peer) return "max_connections_per_peer";
    ++from_peer;
    open.fetch_add(1);
    pending.fetch_add(1);
    return std::nullopt;
  }
  std::vector<std::shared_ptr<SessionBase>> live_sessions() {
    std::vector<std::shared_ptr<SessionBase>> out;
    std::lock_guard lock(mu);
    for (auto& [p, w] : sessions)
      if (auto s = w.lock()) out.push_back(std::move(s));
    return out;
  }
  void stop(std::chrono::milliseconds grace);
  static Result<ServerPtr> launch(ServerOptions options, std::function<Response(Request&)> handler);
};

namespace {

template <bool kTls>
class Session : public SessionBase {
 public:
  using Stream = std::conditional_t<kTls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;

  Session(Server::Impl& server, tcp::socket&& socket, std::string remote, std::string peer_address)
      : server_(server), stream_(make_stream(server, std::move(socket))), remote_(std::move(remote)),
        peer_address_(std::move(peer_address)) {}
  ~Session() override {
    end_pending();
    server_.session_closed(this, peer_address_);
  }

  void start() {
    server_.register_session(shared_from_this());
    if constexpr (kTls) {
      detail::attach_verify_state(stream_.native_handle(), &verify_);
      phase_ = Phase::kHandshake;
      lowest().expires_after(server_.options.handshake_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = self()](beast::error_code ec) { self->on_handshake(ec); });
    } else {
      read_request();
    }
  }

  void begin_stop() override {
    asio::post(stream_.get_executor(), [self = self()] {
      // Requests whose handler runs (or whose response is being written) finish; the rest close.
      if (self->phase_ != Phase::kHandling && self->phase_ != Phase::kWriting) self->close();
    });
  }
  void force_close() override {
    asio::post(stream_.get_executor(), [self = self()] { self->close(); });
  }

 private:
  enum class Phase { kHandshake, kIdle, kReading, kHandling, kWriting, kLingering, kClosed };

  static Stream make_stream(Server::Impl& server, tcp::socket&& socket) {
    if constexpr (kTls) return Stream(std::move(socket), server.tls->ctx);
    else return Stream(std::move(socket));
  }
  std::shared_ptr<Session> self() { return std::static_pointer_cast<Session>(shared_from_this()); }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  // The connection leaves the pre-handshake phase (TLS handshake done, or for plain HTTP its
  // first request header read); only then may it use the reserved slots.
  void end_pending() {
    if (pending_) server_.pending.fetch_sub(1);
    pending_ = false;
  }

  void on_handshake(beast::error_code ec) {
    if (!ec) end_pending();
    if (ec) {
      server_.log->debug("tls handshake failed peer={} error={}{}", remote_, ec.message(),
                         verify_.error.empty() ? "" : " verify=" + verify_.error);
      return close();
    }
    if constexpr (kTls) {
      auto exporter = detail::connection_exporter(stream_.native_handle());
      if (!exporter.ok()) {
        server_.log->warn("tls exporter failed peer={} error={}", remote_, exporter.status().message());
        return close();
      }
      connection_ = std::make_shared<ConnectionContext>(std::move(exporter).value());
    }
    read_request();
  }

  void read_request() {
    if (server_.stopping.load() || phase_ == Phase::kClosed) return close();
    parser_.emplace();
    detail::limit_request_parser(*parser_, server_.options.max_header_bytes, server_.options.max_body_bytes);
    if (!first_request_ && buffer_.size() == 0) {
      // Keep-alive: wait for the next request's first byte under the idle timeout.
      phase_ = Phase::kIdle;
      lowest().expires_after(server_.options.idle_timeout);
      stream_.async_read_some(buffer_.prepare(kReadChunk),
                              [self = self()](beast::error_code ec, size_t n) {
                                if (ec) return self->close();
                                self->buffer_.commit(n);
                                self->read_header();
                              });
      return;
    }
    read_header();
  }

  void read_header() {
    phase_ = Phase::kReading;
    // One deadline for the whole request, so trickling bytes does not extend it.
    lowest().expires_after(server_.options.read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = self()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    end_pending();
    // The peer was verified at the handshake; once its (short-lived) certificate has expired, a
    // keep-alive connection serves no further request: it closes unanswered and the client
    // reconnects, presenting a current certificate.
    if (verify_.peer_certificate_expired(std::time(nullptr))) return close();
    auto& req = parser_->get();
    if (!parser_->is_done() && iequals(req[http::field::expect], "100-continue")) {
      continue_.emplace(http::status::continue_, req.version());
      http::async_write(stream_, *continue_, [self = self()](beast::error_code ec2, size_t) {
        if (ec2) return self->close();
        self->read_body();
      });
      return;
    }
    if (parser_->is_done()) return on_request();
    read_body();
  }

  void read_body() {
    // A large body of known length is read straight into place; the parser has the header, and
    // release() hands over the message with it.
    const auto length = parser_->content_length();
    // Checked here too: Beast does not always apply the body limit to the Content-Length before
    // the first body byte, and the direct read sizes the buffer from it.
    if (length && *length > server_.options.max_body_bytes) return on_read_error(http::error::body_limit);
    if (length && *length >= detail::kDirectBodyMin) {
      std::string& body = parser_->get().body();
      const size_t buffered = detail::begin_direct_body(buffer_, body, *length);
      asio::async_read(stream_, asio::buffer(body.data() + buffered, *length - buffered),
                       [self = self()](beast::error_code ec, size_t) {
                         if (ec) return self->on_read_error(ec);
                         self->on_request();
                       });
      return;
    }
    http::async_read(stream_, buffer_, *parser_,
                     [self = self()](beast::error_code ec, size_t) {
                       if (ec) return self->on_read_error(ec);
                       self->on_request();
                     });
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::header_limit)
      return reply_and_close(431, "resource-exhausted", "request headers too large");
    if (ec == http::error::body_limit)
      return reply_and_close(413, "resource-exhausted",
                             fmt::format("request body larger than {} bytes", server_.options.max_body_bytes));
    if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message)
      return reply_and_close(400, "invalid-argument", "malformed HTTP request");
    if (ec == beast::error::timeout)
      server_.log->debug("request read timed out peer={}", remote_);
    close();
  }

  void on_request() {
    phase_ = Phase::kHandling;
    auto msg = parser_->release();
    const bool keep_alive = msg.keep_alive();
    const unsigned version = msg.version();
    Request req = detail::request_from_message(std::move(msg));
    req.remote_address = remote_;
    req.peer = verify_.identity;
    if (!connection_) connection_ = std::make_shared<ConnectionContext>(std::vector<uint8_t>{});
    req.connection = connection_;
    asio::post(*server_.pool, [self = self(), req = std::move(req), keep_alive, version]() mutable {
      Response res = self->server_.run_handler(req);
      asio::post(self->stream_.get_executor(),
                 [self, res = std::move(res), keep_alive, version]() mutable {
                   self->write_response(std::move(res), keep_alive, version);
                 });
    });
  }

  void write_response(Response res, bool keep_alive, unsigned version) {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kWriting;
    // Counted before the write, so a client that has read the response sees it counted.
    server_.served.fetch_add(1);
    response_ = {};
    response_.version(version);
    bool headers_ok = res.status >= 100 && res.status <= 999;
    for (const auto& [name, value] : res.headers.fields())
      headers_ok = headers_ok && !name.empty() && !has_crlf(name) && !has_crlf(value);
    if (!headers_ok) {
      // Header injection or a nonsense status from a handler: refuse to put it on the wire.
      server_.log->error("handler produced an invalid response status={}", res.status);
      res = error_response(internal_error("internal error"));
    }
    response_.result(static_cast<unsigned>(res.status));
    for (const auto& [name, value] : res.headers.fields()) response_.insert(name, value);
    response_.set(http::field::server, server_.options.name);
    response_.body() = std::move(res.body);
    response_.keep_alive(keep_alive && !server_.stopping.load());
    response_.prepare_payload();
    lowest().expires_after(server_.options.write_timeout);
    http::async_write(stream_, response_, [self = self()](beast::error_code ec, size_t) {
      if (ec || !self->response_.keep_alive()) return self->close();
      self->first_request_ = false;
      self->read_request();
    });
  }

  // Early error (431, 413, 400): answer, then discard what the client still sends for a bounded
  // time and size before closing, so it reads the answer rather than a reset.
  void reply_and_close(int status, std::string_view code, std::string message) {
    phase_ = Phase::kWriting;
    Response r = error_response(status, code, message);
    response_ = {};
    response_.version(11);
    response_.result(static_cast<unsigned>(status));
    for (const auto& [name, value] : r.headers.fields()) response_.insert(name, value);
    response_.set(http::field::server, server_.options.name);
    response_.body() = std::move(r.body);
    response_.keep_alive(false);
    response_.prepare_payload();
    lowest().expires_after(server_.options.write_timeout);
    http::async_write(stream_, response_, [self = self()](beast::error_code ec, size_t) {
      if (ec) return self->close();
      if constexpr (!kTls) {
        beast::error_code ignored;
        self->lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      }
      self->phase_ = Phase::kLingering;
      self->linger_left_ = kLingerMaxBytes;
      self->lowest().expires_after(kLingerTime);
      self->linger();
    });
  }

  void linger() {
    buffer_.consume(buffer_.size());
    stream_.async_read_some(buffer_.prepare(kReadChunk), [self = self()](beast::error_code ec, size_t n) {
      if (ec || n >= self->linger_left_) return self->close();
      self->linger_left_ -= n;
      self->linger();
    });
  }

  void close() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
  }

  Server::Impl& server_;
  Stream stream_;
  std::string remote_;
  std::string peer_address_;
  bool pending_ = true;  // counted in Server::Impl::pending
  detail::PeerVerifyState verify_;
  std::shared_ptr<ConnectionContext> connection_;  // set after the handshake (or first request)
  beast::flat_buffer buffer_;
  std::optional<detail::BeastRequestParser> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  http::response<http::string_body> response_;
  Phase phase_ = Phase::kReading;
  bool first_request_ = true;
  size_t linger_left_ = 0;
};

}  // namespace

Status Server::Impl::listen() {
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(options.host, std::to_string(options.port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty())
    return unavailable("cannot resolve listen address '{}': {}", options.host, ec.message());
  tcp::endpoint endpoint = results.begin()->endpoint();
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return unavailable("cannot listen on {}:{}: {}", options.host, options.port, ec.message());
  port = acceptor.local_endpoint(ec).port();
  return Status::Ok();
}

void Server::Impl::do_accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void Server::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (stopping.load() || !acceptor.is_open()) return;
  if (ec) {
    // Typically EMFILE: back off briefly instead of spinning.
    log->warn("accept failed server={} error={}", options.name, ec.message());
    accept_backoff->expires_after(std::chrono::milliseconds(50));
    accept_backoff->async_wait([this](beast::error_code) {
      if (!stopping.load()) do_accept();
    });
    return;
  }
  beast::error_code rec;
  auto ep = socket.remote_endpoint(rec);
  std::string address = rec ? "unknown" : ep.address().to_string();
  if (auto refusal = admit(address)) {
    refused.fetch_add(1);
    // A flood produces one of these per connection: throttled, with the count of those dropped.
    if (auto suppressed = refusal_log.admit())
      log->warn("connection refused server={} reason={} peer={} suppressed={}", options.name, *refusal,
                address, *suppressed);
    beast::error_code ignored;
    socket.close(ignored);
    return do_accept();
  }
  socket.set_option(tcp::no_delay(true), rec);  // responses are single writes; do not wait for ACKs
  std::string remote = rec ? "unknown" : fmt::format("{}:{}", address, ep.port());
  accepted.fetch_add(1);
  if (tls) std::make_shared<Session<true>>(*this, std::move(socket), std::move(remote), std::move(address))->start();
  else std::make_shared<Session<false>>(*this, std::move(socket), std::move(remote), std::move(address))->start();
  do_accept();
}

Response Server::Impl::run_handler(Request& req) {
  try {
    return handler(req);
  } catch (const std::exception& e) {
    log->error("handler threw server={} method={} path={} what={}", options.name, req.method,
               req.path.substr(0, 200), e.what());
  } catch (...) {
    log->error("handler threw server={} method={} path={}", options.name, req.method,
               req.path.substr(0, 200));
  }
  return error_response(internal_error("internal error"));
}

void Server::Impl::stop(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mu);
    if (stopped) return;
    stopped = true;
  }
  stopping.store(true);
  asio::post(acceptor.get_executor(), [this] {
    beast::error_code ignored;
    acceptor.close(ignored);
    accept_backoff->cancel();
  });
  for (auto& s : live_sessions()) s->begin_stop();
  {
    std::unique_lock lock(mu);
    all_closed.wait_for(lock, grace, [this] { return open.load() == 0; });
  }
  for (auto& s : live_sessions()) s->force_close();
  {
    // Let the force-closes run (a session waiting for its handler stays open until it returns).
    std::unique_lock lock(mu);
    all_closed.wait_for(lock, std::chrono::milliseconds(100), [this] { return open.load() == 0; });
  }
  work.reset();
  ioc.stop();
  for (auto& t : io_threads) t.join();
  io_threads.clear();
  pool->join();
  log->debug("server stopped name={} served={}", options.name, served.load());
}

Result<ServerPtr> Server::Impl::launch(ServerOptions options,
                                       std::function<Response(Request&)> handler) {
  if (options.worker_threads == 0 || options.io_threads == 0)
    return invalid_argument("server needs at least one worker and one I/O thread");
  if (options.max_connections == 0 || options.max_connections_per_peer == 0)
    return invalid_argument("server max_connections and max_connections_per_peer must be > 0");
  auto impl = std::make_unique<Impl>(std::move(options));
  impl->handler = std::move(handler);
  if (impl->options.tls) {
    MOSS_ASSIGN_OR_RETURN(impl->tls, detail::make_server_tls(*impl->options.tls));
    // The key now lives inside OpenSSL; drop our PEM copy.
    impl->options.tls->key_pem.wipe();
  }
  MOSS_RETURN_IF_ERROR(impl->listen());
  impl->accept_backoff = std::make_unique<asio::steady_timer>(impl->acceptor.get_executor());
  impl->pool = std::make_unique<asio::thread_pool>(impl->options.worker_threads);
  impl->work.emplace(impl->ioc.get_executor());
  impl->do_accept();
  Impl* raw = impl.get();
  for (size_t i = 0; i < raw->options.io_threads; ++i) raw->io_threads.emplace_back([raw] { raw->ioc.run(); });
  raw->log->info("listening server={} address={}:{} tls={} mtls={}", raw->options.name,
                 raw->options.host, raw->port, raw->tls != nullptr,
                 raw->options.tls && raw->options.tls->require_client_cert);
  return ServerPtr(new Server(std::move(impl)));
}

Result<ServerPtr> Server::start(ServerOptions options, Handler handler) {
  if (!handler) return invalid_argument("server needs a handler");
  return Impl::launch(std::move(options),
                      [h = std::move(handler)](Request& req) { return h(req); });
}

Result<ServerPtr> Server::start(ServerOptions options, Router router) {
  return Impl::launch(std::move(options),
                      [r = std::move(router)](Request& req) { return r.dispatch(req); });
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { stop(std::chrono::milliseconds(0)); }
uint16_t Server::port() const { return impl_->port; }
bool Server::tls() const { return impl_->tls != nullptr; }
void Server::stop(std::chrono::milliseconds grace) { impl_->stop(grace); }
uint64_t Server::connections_accepted() const { return impl_->accepted.load(); }
uint64_t Server::connections_refused() const { return impl_->refused.load(); }
size_t Server::connections_open() const { return impl_->open.load(); }
uint64_t Server::requests_served() const { return impl_->served.load(); }

}  // namespace moss::net
