// net_bench: what the HTTP stack itself costs on this machine.
//
//   net_bench [--seconds S] [--threads 1,4,16] [--workers W]
//
// For plain HTTP and HTTPS (TLS 1.3, ECDSA P-256), each client-thread count runs for S seconds:
// every thread owns one keep-alive Client and sends GET /noop back to back. Prints requests/s and
// p50/p99 latency. Then measures a fresh TLS connection (TCP connect + handshake + one request),
// the cost attested TLS adds its evidence check to. Server and clients share the machine.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/common/closed_loop.h"
#include "common/percentile.h"
#include "common/logging.h"
#include "net/client.h"
#include "net/server.h"
#include "net/tls_credentials.h"

using namespace moss;
using namespace moss::net;
using Clock = std::chrono::steady_clock;

namespace {

using Figures = bench::LoadFigures;

Figures run_handshakes(const ClientOptions& opt, int count) {
  std::vector<double> lat;
  uint64_t errors = 0;
  auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    Client client(opt);  // a new connection (and handshake) each time
    auto t0 = Clock::now();
    auto r = client.get("/noop");
    auto t1 = Clock::now();
    if (!r.ok()) { ++errors; continue; }
    lat.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  Figures f;
  f.rps = static_cast<double>(lat.size()) / std::chrono::duration<double>(Clock::now() - start).count();
  f.p50_us = percentile_in_place(lat, 0.50);
  f.p99_us = percentile_in_place(lat, 0.99);
  f.errors = errors;
  return f;
}

std::vector<int> parse_list(const char* s) {
  std::vector<int> out;
  for (const char* p = s; *p;) {
    out.push_back(std::atoi(p));
    while (*p && *p != ',') ++p;
    if (*p == ',') ++p;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2.0;
  std::vector<int> thread_counts = {1, 4, 16};
  size_t workers = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads")) thread_counts = parse_list(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--workers")) workers = static_cast<size_t>(std::atoi(argv[i + 1]));
  }
  (void)moss::log::set_level("warn");
  auto creds = generate_self_signed().value_or_die();
  Handler noop = [](const Request&) { return Response::text(200, "ok"); };

  ServerOptions plain_opt;
  plain_opt.worker_threads = workers;
  auto plain = Server::start(std::move(plain_opt), noop).value_or_die();
  ServerOptions tls_opt;
  tls_opt.worker_threads = workers;
  tls_opt.tls = TlsServerConfig{creds.cert_pem, creds.key_pem.clone(), nullptr, false, {}, {}};
  auto tls = Server::start(std::move(tls_opt), noop).value_or_die();

  TlsClientConfig cc;
  cc.ca_pem = creds.cert_pem;
  auto client_tls = ClientTlsContext::create(std::move(cc)).value_or_die();

  std::printf("net_bench: no-op handler, keep-alive, %zu worker threads, %u hardware threads, %.1f s per row\n",
              workers, std::thread::hardware_concurrency(), seconds);
  std::printf("%-6s %8s %12s %10s %10s %7s\n", "proto", "clients", "requests/s", "p50_us", "p99_us", "errors");
  for (bool use_tls : {false, true}) {
    for (int n : thread_counts) {
      ClientOptions opt;
      opt.port = use_tls ? tls->port() : plain->port();
      if (use_tls) opt.tls = client_tls;
      Figures f = bench::closed_loop(opt, Request::make("GET", "/noop"), n, seconds);
      std::printf("%-6s %8d %12.0f %10.1f %10.1f %7llu\n", use_tls ? "https" : "http", n, f.rps, f.p50_us,
                  f.p99_us, static_cast<unsigned long long>(f.errors));
    }
  }
  ClientOptions hs;
  hs.port = tls->port();
  hs.tls = client_tls;
  Figures h = run_handshakes(hs, 300);
  std::printf("new TLS 1.3 connection + 1 request (ECDSA P-256, 300 sequential): p50 %.0f us, p99 %.0f us, errors %llu\n",
              h.p50_us, h.p99_us, static_cast<unsigned long long>(h.errors));
  plain->stop();
  tls->stop();
  return 0;
}
