// Closed-loop load for the benches: `threads` clients, each on its own keep-alive connection,
// send one request back to back for `seconds`; requests/s and latency percentiles. Shared by
// net_bench (the HTTP stack's no-op anchor) and keyservice_bench (release vs the same anchor).
#pragma once

#include "common/percentile.h"
#include "net/client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace moss::bench {

struct LoadFigures {
  double rps = 0, p50_us = 0, p99_us = 0;
  uint64_t errors = 0;  // transport failures and non-200 answers (not in the latencies)
};

// Connections (and TLS handshakes) are made before the clock starts: keep-alive figures only.
// Client t connects with options[t % options.size()] (several replicas of one service: the clients
// spread over them).
inline LoadFigures closed_loop(const std::vector<net::ClientOptions>& options, const net::Request& request,
                               int threads, double seconds) {
  using Clock = std::chrono::steady_clock;
  std::vector<std::vector<double>> latencies(static_cast<size_t>(threads));
  std::vector<net::Client> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back(options[static_cast<size_t>(t) % options.size()]);
    (void)clients.back().connect();
  }
  std::atomic<uint64_t> errors{0};
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto& mine = latencies[static_cast<size_t>(t)];
      while (Clock::now() < deadline) {
        const auto t0 = Clock::now();
        auto r = clients[static_cast<size_t>(t)].request(request);
        const auto t1 = Clock::now();
        if (!r.ok() || r->status != 200) {
          ++errors;
          continue;
        }
        mine.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      }
    });
  }
  for (auto& w : workers) w.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  LoadFigures f;
  f.rps = static_cast<double>(all.size()) / elapsed;
  f.p50_us = percentile_in_place(all, 0.50);
  f.p99_us = percentile_in_place(all, 0.99);
  f.errors = errors.load();
  return f;
}
inline LoadFigures closed_loop(const net::ClientOptions& options, const net::Request& request, int threads,
                               double seconds) {
  return closed_loop(std::vector<net::ClientOptions>{options}, request, threads, seconds);
}

}  // namespace moss::bench
