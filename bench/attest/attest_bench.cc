// attest_bench: what attestation costs.
//
// 1. Verifying a real DCAP quote (SGX v3 and TDX v4 from tests/data/attestation) with
//    collateral already loaded and verified in a CollateralCache: what a KeyService pays per
//    handshake once collateral is cached. Reported in microseconds (median and mean of --reps).
// 2. TLS 1.3 handshakes on loopback, alternating in the same run: plain (CA-pinned self-signed
//    certificate), attested one-way and attested mutual, both with simulated evidence (Ed25519
//    platform key; a DCAP quote would add the verify time from 1). Each sample is a fresh
//    connection: TCP connect plus handshake. Reported in milliseconds (median and mean).
//
// Usage: attest_bench [--reps N] [--handshakes N] [--testdata DIR]
#include "attest/attested_tls.h"
#include "common/encoding.h"
#include "attest/intel_root.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/percentile.h"
#include "common/rfc3339.h"
#include "net/client.h"
#include "net/server.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include <time.h>
#include <unistd.h>

namespace {

using namespace moss;
using Clock = std::chrono::steady_clock;

template <typename T>
T must(Result<T> r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "attest_bench: %s: %s\n", what, r.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

const char* arg(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}

struct Stats { double median, mean; };
Stats stats(const std::vector<double>& v) {
  return {percentile(v, 0.5), std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size())};
}

double time_us(const std::function<void()>& fn) {
  auto t0 = Clock::now();
  fn();
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

// CPU time of this thread: on a shared, loaded machine it shows the work itself, not the wait.
double thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

void bench_verify(const std::filesystem::path& data, const char* quote, const char* folder, const char* when, int reps) {
  auto root = must(attest::intel_sgx_root_ca(), "root");
  attest::CollateralCache cache;
  cache.put(must(attest::load_collateral_dir(data / folder, root.get()), folder));
  auto bytes = must(read_file(data / quote, 1 << 20), quote);
  auto verifier = must(attest::DcapVerifier::create(), "verifier");
  attest::DcapVerifyOptions o{must(parse_rfc3339(when), "time"), nullptr, &cache};
  std::string status;
  std::vector<double> samples, cpu;
  for (int i = 0; i < reps; ++i) {
    double c0 = thread_cpu_us();
    samples.push_back(time_us([&] { status = must(verifier.verify(bytes, o), quote).tcb_status; }));
    cpu.push_back(thread_cpu_us() - c0);
  }
  auto s = stats(samples), c = stats(cpu);
  std::printf("verify %-24s cached collateral: median %.0f us wall (%.0f us CPU), mean %.0f us wall (%d reps, tcb %s)\n",
              quote, s.median, c.median, s.mean, reps, status.c_str());
}

double handshake_ms(uint16_t port, const net::ClientTlsContextPtr& tls) {
  net::ClientOptions o;
  o.port = port;
  o.tls = tls;
  net::Client client(o);
  auto t0 = Clock::now();
  auto st = client.connect();
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (!st.ok()) {
    std::fprintf(stderr, "attest_bench: handshake: %s\n", st.to_string().c_str());
    std::exit(1);
  }
  return ms;
}

net::ServerPtr serve(net::TlsServerConfig tls) {
  net::ServerOptions o;
  o.tls = std::move(tls);
  o.worker_threads = 1;
  return must(net::Server::start(std::move(o), [](const net::Request&) { return net::Response::text(200, "ok"); }), "server");
}

void bench_handshakes(int n) {
  auto dir = std::filesystem::temp_directory_path() / ("moss-attest-bench-" + std::to_string(::getpid()));
  attest::ProducerConfig pc;
  pc.kind = "sim";
  pc.sim_key_file = dir / "sim.key";
  auto producer = must(attest::make_producer(pc), "producer");
  auto measurement = hex_encode(must(attest::simulated_measurement("/proc/self/exe", ""), "measure"));
  attest::AttestedPeerConfig peer;
  peer.policy = must(attest::Policy::parse(R"({"version":1,"allow_simulated":true,"measurements":[{"tee":"simulated","measurement":")" + measurement + R"("}]})"), "policy");
  peer.verify.allow_simulated = true;
  peer.verify.sim_platform_key = must(attest::SimPlatformKey::load_public_key(pc.sim_key_file), "key");
  auto hook = must(attest::make_attested_peer_verifier(peer), "hook");
  attest::AttestedCredentialOptions co;

  auto plain_creds = must(net::generate_self_signed(), "plain creds");
  net::TlsClientConfig plain_client;
  plain_client.ca_pem = plain_creds.cert_pem;
  net::TlsServerConfig plain_server;
  plain_server.cert_chain_pem = plain_creds.cert_pem;
  plain_server.key_pem = std::move(plain_creds.key_pem);
  auto plain = serve(std::move(plain_server));
  auto plain_tls = must(net::ClientTlsContext::create(std::move(plain_client)), "plain ctx");

  auto one_way = serve(attest::attested_server_config(must(attest::make_attested_credentials(*producer, co), "creds")));
  auto one_way_tls = must(net::ClientTlsContext::create(attest::attested_client_config(hook)), "ctx");
  auto mutual = serve(attest::attested_server_config(must(attest::make_attested_credentials(*producer, co), "creds"), hook));
  auto mutual_tls = must(net::ClientTlsContext::create(
      attest::attested_client_config(hook, must(attest::make_attested_credentials(*producer, co), "creds"))), "ctx");

  std::vector<double> p, a, m;
  // Interleaved, with the order rotating, so machine noise and warm-up hit all three alike.
  std::function<void()> runs[] = {
      [&] { p.push_back(handshake_ms(plain->port(), plain_tls)); },
      [&] { a.push_back(handshake_ms(one_way->port(), one_way_tls)); },
      [&] { m.push_back(handshake_ms(mutual->port(), mutual_tls)); }};
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) runs[(i + k) % 3]();
  auto sp = stats(p), sa = stats(a), sm = stats(m);
  std::printf("handshake plain TLS 1.3           : median %.2f ms, mean %.2f ms (%d)\n", sp.median, sp.mean, n);
  std::printf("handshake attested (sim, one-way) : median %.2f ms, mean %.2f ms (%d)\n", sa.median, sa.mean, n);
  std::printf("handshake attested (sim, mutual)  : median %.2f ms, mean %.2f ms (%d)\n", sm.median, sm.mean, n);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace

int main(int argc, char** argv) {
  moss::log::set_level("warn");
  int reps = std::atoi(arg(argc, argv, "--reps", "500"));
  int handshakes = std::atoi(arg(argc, argv, "--handshakes", "100"));
  std::filesystem::path data = arg(argc, argv, "--testdata", MOSS_SOURCE_DIR_DEFAULT "/tests/data/attestation");
  if (std::filesystem::exists(data / "expected.json")) {
    bench_verify(data, "sgx-v3-phala-1.quote", "sgx-v3-phala-1.collateral", "2025-07-01T00:00:00Z", reps);
    bench_verify(data, "tdx-v4-phala-1.quote", "tdx-v4-phala-1.collateral", "2025-07-01T00:00:00Z", reps);
  } else {
    std::printf("verify: %s not found, skipped\n", data.c_str());
  }
  bench_handshakes(handshakes);
  return 0;
}
