// keyservice_bench: what a key release costs on this machine.
//
//   keyservice_bench [--seconds S] [--threads 1,4] [--audit-poll RATE] [--prefill-seconds P]
//                    [--connections N] [--store sqlite,etcd,etcd3] [--faults PHASE_S] [--json FILE]
//
// Starts a KeyServer in this process (simulated TEE, state in a temporary directory on the same
// disk as /tmp), sets up one owner, user, model key, grant and request key, then for each
// client-thread count runs S seconds of
//   anchor:   GET /livez     (no-op handler, same server, same mutually attested TLS connection)
//   release:  POST /v1/release (access rule, unseal 2 keys, one durable audit commit)
// with one keep-alive worker connection per thread, and prints requests/s, p50/p99 and the ratio
// to the anchor. Rate limits are off for the measurement (the service default is 50/s per worker).
// With --audit-poll RATE, the release run is repeated while another principal (registered, with no
// events of its own: the query that used to scan the whole log) polls GET /v1/audit RATE times a
// second (below its rate limit; a negative RATE: as fast as it can);
// --prefill-seconds first runs releases for that long so the audit log is large.
// Last, the per-connection cost: N new connections (default 50) opened one after another, with
// the mutually attested handshake only ("connect") and with the connection attestation a worker
// does before its first release ("connect+attest": simulated evidence produced, sent, verified).
// --store: the state stores to measure, one after the other in this run (default sqlite): etcd is
// a one-member etcd started on loopback with its data in /tmp (tests/support/etcd_process.h), one
// replica; etcd3 is a 3-member etcd and 3 replicas in this process (the second and third joined to
// the first, each talking to another member first), the client threads spread over them; each
// store's release figures stand beside its own no-op anchor. Each store also gets a write row:
// "grant", one owner adding grants one after another for S seconds (signed, one etcd transaction
// or SQLite commit each) through the first replica.
// --faults PHASE_S: last, the fault run of tests/support/keyservice_fault_run.h with PHASE_S seconds
// of load per phase: 3 moss-keyservice processes (from this binary's directory) over a 3-member
// etcd, grant/revoke and release load from failing-over clients, kill -9 of a replica (the time
// until every client is served again is the time to recover full service), kill -9 of an etcd
// member, a replica partitioned from etcd, restart of everything; prints the fault table.
// --json FILE: the same rows for bench/plot_results.py (bench/common/json_output.h).
#include "attest/attested_tls.h"
#include "attest/connection_attestation.h"
#include "bench/common/closed_loop.h"
#include "bench/common/json_output.h"
#include "client/keyservice_client.h"
#include "common/encoding.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/percentile.h"
#include "crypto/random.h"
#include "keyservice/keyservice_server.h"
#include "support/etcd_process.h"
#include "support/keyservice_fault_run.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

using namespace moss;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string policy_json(const std::string& measurement) {
  return R"({"version":1,"name":"bench","allow_simulated":true,"measurements":[{"tee":"simulated","measurement":")" +
         measurement + "\"}]}";
}

std::string sim_measurement(const std::string& identity) {
  return hex_encode(attest::simulated_measurement("/proc/self/exe", identity).value_or_die());
}

std::shared_ptr<attest::EvidenceProducer> worker_producer(const fs::path& sim_key) {
  attest::ProducerConfig pc;
  pc.kind = "sim";
  pc.sim_key_file = sim_key;
  pc.sim_identity = "bench-worker";
  return attest::make_shared_producer(attest::make_producer(pc).value_or_die());
}

net::ClientTlsContextPtr worker_tls(attest::EvidenceProducer& producer, const std::string& ks_measurement,
                                    const fs::path& sim_key) {
  attest::AttestedCredentialOptions co;
  co.purpose = "moss-worker";
  auto creds = attest::make_attested_credentials(producer, co).value_or_die();
  attest::AttestedPeerConfig peer;
  peer.purpose = "moss-keyservice";
  peer.policy = attest::Policy::parse(policy_json(ks_measurement)).value_or_die();
  peer.verify.allow_simulated = true;
  peer.verify.sim_platform_key = attest::SimPlatformKey::load_public_key(sim_key).value_or_die();
  auto verifier = attest::make_attested_peer_verifier(std::move(peer)).value_or_die();
  return net::ClientTlsContext::create(attest::attested_client_config(verifier, std::move(creds)))
      .value_or_die();
}

using Figures = bench::LoadFigures;

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2;
  std::vector<int> thread_counts = {1, 4};
  double audit_poll = 0;
  int connections = 50;
  double prefill_seconds = 0;
  std::string json_path;
  std::vector<std::string> stores = {"sqlite"};
  double fault_phase_seconds = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--audit-poll")) audit_poll = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--prefill-seconds")) prefill_seconds = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--connections")) connections = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--json")) json_path = argv[i + 1];
    if (!std::strcmp(argv[i], "--faults")) fault_phase_seconds = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--store")) {
      stores.clear();
      std::stringstream ss(argv[i + 1]);
      for (std::string t; std::getline(ss, t, ',');) stores.push_back(t);
    }
    if (!std::strcmp(argv[i], "--threads")) {
      thread_counts.clear();
      std::stringstream ss(argv[i + 1]);
      for (std::string t; std::getline(ss, t, ',');) thread_counts.push_back(std::stoi(t));
    }
  }
  (void)log::set_level("warn");
  std::string tmpl = (fs::temp_directory_path() / "moss-ksbench-XXXXXX").string();
  fs::path dir = mkdtemp(tmpl.data());
  fs::path sim_key = dir / "sim.key";
  (void)attest::SimPlatformKey::load_or_create(sim_key).value_or_die();
  std::string ks_m = sim_measurement("moss-keyservice"), worker_m = sim_measurement("bench-worker");

  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  std::unique_ptr<test_support::EtcdProcess> etcd;
  std::vector<std::unique_ptr<keyservice::KeyServer>> servers;  // the latest store's replicas
  std::vector<net::ClientOptions> opts;  // a worker connection to each of them
  auto run_store = [&](const std::string& store) -> bool {
    const int replicas = store == "etcd3" ? 3 : 1;
    if (store != "sqlite") {
      etcd.reset();
      etcd = test_support::EtcdProcess::start(replicas);
      if (!etcd) {
        std::fprintf(stderr, "keyservice_bench: %s\n", test_support::EtcdProcess::kMissing);
        return false;
      }
    }
    for (int r = 0; r < replicas; ++r) {
      keyservice::KeyServerOptions o;
      o.state_dir = dir / fmt::format("state-{}-{}", store, r);
      o.store = store == "sqlite" ? "sqlite" : "etcd";
      if (store != "sqlite") {
        const size_t n = etcd->size();
        for (size_t k = 0; k < n; ++k) o.etcd_endpoints.push_back(etcd->endpoint((static_cast<size_t>(r) + k) % n));
      }
      if (replicas > 1) {
        o.replica_listen = std::make_pair(std::string("127.0.0.1"), uint16_t{0});
        o.replica_policy = attest::Policy::parse(policy_json(ks_m)).value_or_die();
        if (r > 0) o.join_url = fmt::format("https://127.0.0.1:{}", servers[0]->replica_port());
      }
      o.producer.kind = "sim";
      o.producer.sim_key_file = sim_key;
      o.producer.sim_identity = "moss-keyservice";
      o.worker_policy = attest::Policy::parse(policy_json(worker_m)).value_or_die();
      o.allow_simulated_workers = true;
      o.worker_threads = 4;
      o.service.rate_per_s = 0;
      servers.push_back(keyservice::KeyServer::start(std::move(o)).value_or_die());
    }
    keyservice::KeyServer* server = servers[0].get();

    (void)write_text_file(dir / "ks-policy.json", policy_json(ks_m));
    client::ClientConfig cc;
    cc.keyservice_url = "https://127.0.0.1:" + std::to_string(server->port());
    cc.keyservice_policy = dir / "ks-policy.json";
    cc.allow_simulated = true;
    cc.sim_key_file = sim_key;
    auto owner = client::KeyServiceClient::create(cc, crypto::Identity::generate().value_or_die()).value_or_die();
    auto user = client::KeyServiceClient::create(cc, crypto::Identity::generate().value_or_die()).value_or_die();
    std::string model = owner.principal_id() + "/bench";
    (void)owner.register_self().value_or_die();
    (void)user.register_self().value_or_die();
    (void)owner.put_model_key(model, crypto::random_secret(32).value_or_die().span(), false).value_or_die();
    (void)owner.add_grant(model, user.principal_id(), worker_m).value_or_die();
    (void)user.put_request_key(model, worker_m, crypto::random_secret(32).value_or_die().span()).value_or_die();

    auto producer = worker_producer(sim_key);
    for (const auto& s : servers) {
      net::ClientOptions opt;
      opt.port = s->port();
      opt.tls = worker_tls(*producer, ks_m, sim_key);
      opt.on_connect = attest::make_connection_attestation_hook(producer, "moss-worker", "/v1/attest-connection");
      opts.push_back(std::move(opt));
    }
    net::Request noop = net::Request::make("GET", "/livez");
    net::Request release = net::Request::make(
        "POST", "/v1/release",
        R"({"model_id":")" + model + R"(","user_id":")" + user.principal_id() + R"("})", "application/json");

    if (prefill_seconds > 0) (void)bench::closed_loop(opts, release, 4, prefill_seconds);
    std::printf("keyservice_bench: store %s (%d replica%s), %.1f s per run, keep-alive mutually attested "
                "TLS 1.3 (simulated TEE), state on the disk of %s\n", store.c_str(), replicas,
                replicas > 1 ? "s, clients spread over them" : "", seconds, dir.c_str());
    std::printf("%-8s %-9s %12s %10s %10s %8s %12s\n", "threads", "endpoint", "requests/s", "p50_us",
                "p99_us", "errors", "rps_vs_noop");
    auto row = [&](int threads, const char* endpoint, const Figures& f) {
      rows.push_back({{"store", store}, {"threads", threads}, {"endpoint", endpoint}, {"rps", f.rps},
                      {"p50_us", f.p50_us}, {"p99_us", f.p99_us}, {"errors", f.errors}});
    };
    for (int threads : thread_counts) {
      Figures anchor = bench::closed_loop(opts, noop, threads, seconds);
      Figures rel = bench::closed_loop(opts, release, threads, seconds);
      std::printf("%-8d %-9s %12.0f %10.0f %10.0f %8llu %12s\n", threads, "noop", anchor.rps,
                  anchor.p50_us, anchor.p99_us, static_cast<unsigned long long>(anchor.errors), "1.000");
      // Three decimals: a release on etcd can run at 1 % of the no-op, which two would print as 0.01 or 0.00.
      std::printf("%-8d %-9s %12.0f %10.0f %10.0f %8llu %12.3f\n", threads, "release", rel.rps, rel.p50_us,
                  rel.p99_us, static_cast<unsigned long long>(rel.errors),
                  anchor.rps > 0 ? rel.rps / anchor.rps : 0.0);
      row(threads, "noop", anchor);
      row(threads, "release", rel);
      if (audit_poll == 0) continue;
      auto poller = client::KeyServiceClient::create(cc, crypto::Identity::generate().value_or_die()).value_or_die();
      (void)poller.register_self().value_or_die();
      std::atomic<bool> stop{false};
      std::atomic<uint64_t> polls{0}, poll_errors{0};
      std::thread poll([&] {
        auto next = Clock::now();
        while (!stop.load()) {
          if (poller.audit("", 0, 100).ok()) {
            polls.fetch_add(1);
          } else {
            poll_errors.fetch_add(1);
          }
          if (audit_poll > 0) {
            next += std::chrono::microseconds(static_cast<int64_t>(1e6 / audit_poll));
            std::this_thread::sleep_until(next);
          }
        }
      });
      Figures polled = bench::closed_loop(opts, release, threads, seconds);
      stop = true;
      poll.join();
      std::printf("%-8d %-9s %12.0f %10.0f %10.0f %8llu %12.3f   (while %.0f audit polls/s, %llu failed, "
                  "audit log %lld events)\n",
                  threads, "rel+poll", polled.rps, polled.p50_us, polled.p99_us,
                  static_cast<unsigned long long>(polled.errors),
                  anchor.rps > 0 ? polled.rps / anchor.rps : 0.0, static_cast<double>(polls.load()) / seconds,
                  static_cast<unsigned long long>(poll_errors.load()),
                  static_cast<long long>(server->state().verify_audit().value_or_die().seq));
      row(threads, "rel+poll", polled);
    }
    // Writes: one owner granting (model, user, a new measurement each time), one after another.
    {
      std::vector<double> us;
      uint64_t failed = 0;
      const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
      const auto start = Clock::now();
      for (uint64_t k = 0; Clock::now() < end; ++k) {
        const auto t0 = Clock::now();
        if (owner.add_grant(model, user.principal_id(), fmt::format("{:064x}", k + 1)).ok()) {
          us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        } else {
          ++failed;
        }
      }
      Figures g;
      g.rps = static_cast<double>(us.size()) / std::chrono::duration<double>(Clock::now() - start).count();
      g.p50_us = percentile_in_place(us, 0.5);
      g.p99_us = percentile_in_place(us, 0.99);
      g.errors = failed;
      std::printf("%-8d %-9s %12.0f %10.0f %10.0f %8llu %12s\n", 1, "grant", g.rps, g.p50_us, g.p99_us,
                  static_cast<unsigned long long>(g.errors), "-");
      row(1, "grant", g);
    }
    return true;
  };
  for (const std::string& store : stores) {
    servers.clear();  // the connection costs below are measured on the last store's first replica
    opts.clear();
    if (!run_store(store)) return 1;
  }
  for (bool attest : {false, true}) {
    net::ClientOptions o = opts[0];
    if (!attest) o.on_connect = nullptr;
    std::vector<double> us;
    uint64_t failed = 0;
    for (int i = 0; i < connections; ++i) {
      net::Client c(o);
      const auto t0 = Clock::now();
      if (!c.connect().ok()) ++failed;
      else us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    double mean = 0;
    for (double v : us) mean += v;
    mean = us.empty() ? 0 : mean / static_cast<double>(us.size());
    std::printf("%-16s %d connections: mean %.0f us, p50 %.0f us, p99 %.0f us, %llu failed\n",
                attest ? "connect+attest" : "connect", connections, mean, percentile_in_place(us, 0.5),
                percentile_in_place(us, 0.99), static_cast<unsigned long long>(failed));
  }
  std::fflush(stdout);
  servers.clear();
  etcd.reset();
  nlohmann::ordered_json faults = nlohmann::ordered_json::array();
  bool fault_failed = false;
  if (fault_phase_seconds > 0) {
    test_support::KeyServiceClusterOptions co;
    co.bin_dir = fs::canonical("/proc/self/exe").parent_path();
    co.dir = dir / "faults";
    fs::create_directories(co.dir);
    auto cluster = test_support::KeyServiceCluster::start(co);
    if (!cluster.ok()) {
      std::fprintf(stderr, "keyservice_bench: fault run: %s\n", cluster.status().to_string().c_str());
      return 1;
    }
    test_support::FaultRunOptions fo;
    fo.phase_seconds = fault_phase_seconds;
    fo.releasers = 4;
    fo.users = 8;
    std::printf("keyservice_bench: fault run, 3 moss-keyservice replicas over a 3-member etcd, %d writers, "
                "%d releasers and a revoker with failover, %.1f s of load per phase\n",
                fo.writers, fo.releasers, fault_phase_seconds);
    auto run = test_support::run_keyservice_faults(**cluster, fo, co.dir);
    if (!run.ok()) {
      std::fprintf(stderr, "keyservice_bench: fault run: %s\n", run.status().to_string().c_str());
      return 1;
    }
    test_support::print_fault_table(*run, stdout);
    if (run->lost_writes != 0 || run->releases_after_revoke != 0 || !run->audit_verifies) fault_failed = true;
    for (const auto& p : run->phases) {
      faults.push_back({{"phase", p.name}, {"seconds", p.seconds}, {"writes", p.writes},
                        {"write_failures", p.write_failures}, {"releases", p.releases},
                        {"refusals", p.refusals}, {"release_failures", p.release_failures},
                        {"recover_ms", p.recover_ms}});
    }
    faults.push_back({{"lost_writes", run->lost_writes}, {"releases_after_revoke", run->releases_after_revoke},
                      {"audit_verifies", run->audit_verifies}, {"replica_restart_ms", run->replica_restart_ms},
                      {"full_restart_ms", run->full_restart_ms}});
    std::fflush(stdout);
  }
  fs::remove_all(dir);
  bool ok = bench::write_json_output(json_path, "keyservice_bench",
                                     {{"seconds", seconds}, {"rows", std::move(rows)}, {"faults", std::move(faults)}});
  std::fflush(stdout);
  return ok && !fault_failed ? 0 : 1;
}
