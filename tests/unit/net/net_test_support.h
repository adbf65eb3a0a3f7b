// Helpers for net tests: raw loopback sockets (to play misbehaving clients) and credentials.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "net/client.h"
#include "net/tls_credentials.h"

namespace moss::net::testing {

// A blocking TCP socket to 127.0.0.1:port; closed on destruction.
class RawSocket {
 public:
  // `source`: the local address to connect from (any 127.0.0.0/8 address works on loopback, so
  // tests can play several peers).
  explicit RawSocket(uint16_t port, const char* source = nullptr) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (source != nullptr) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      ::inet_pton(AF_INET, source, &local.sin_addr);
      if (::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) return;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  bool send_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Reads until the peer closes or `timeout` passes; returns what arrived.
  std::string read_until_close(std::chrono::milliseconds timeout, bool* closed = nullptr) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    if (closed) *closed = false;
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return out;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return out;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        if (closed) *closed = true;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }
  // True when the peer closed (EOF or reset) within `timeout`.
  bool wait_closed(std::chrono::milliseconds timeout) {
    bool closed = false;
    read_until_close(timeout, &closed);
    return closed;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

inline TlsCredentials make_credentials(std::string cn = "localhost", KeyType type = KeyType::kEcdsaP256) {
  CertificateOptions opt;
  opt.common_name = std::move(cn);
  return generate_self_signed(opt, type).value_or_die();
}

inline TlsServerConfig server_tls(const TlsCredentials& creds) {
  TlsServerConfig c;
  c.cert_chain_pem = creds.cert_pem;
  c.key_pem = creds.key_pem.clone();
  return c;
}

// A client trusting exactly `server` (its self-signed certificate as the CA bundle).
inline ClientTlsContextPtr client_trusting(const TlsCredentials& server) {
  TlsClientConfig c;
  c.ca_pem = server.cert_pem;
  return ClientTlsContext::create(std::move(c)).value_or_die();
}

inline ClientOptions client_options(uint16_t port, ClientTlsContextPtr tls = nullptr) {
  ClientOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  o.tls = std::move(tls);
  o.connect_timeout = std::chrono::milliseconds(2000);
  o.read_timeout = std::chrono::milliseconds(5000);
  o.write_timeout = std::chrono::milliseconds(5000);
  return o;
}

}  // namespace moss::net::testing
