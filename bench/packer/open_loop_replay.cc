#include "open_loop_replay.h"

#include "common/percentile.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace moss::bench {

ReplayFigures replay_open_loop(const Trace& trace, const ReplayOptions& options,
                               const std::function<SendOutcome(size_t)>& send,
                               const std::function<void(double)>& sample) {
  using steady = std::chrono::steady_clock;
  const size_t n = trace.requests.size();
  ReplayFigures f;
  f.latency_ms.assign(n, options.deadline_ms);
  f.ok.assign(n, false);
  std::mutex mu;
  std::condition_variable cv;
  std::deque<size_t> queue;
  bool done = false;
  const auto t0 = steady::now();
  auto sender = [&] {
    while (true) {
      size_t idx;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return done || !queue.empty(); });
        if (queue.empty()) return;
        idx = queue.front();
        queue.pop_front();
      }
      SendOutcome r = send(idx);
      const double ms = std::chrono::duration<double, std::milli>(steady::now() - t0).count() -
                        trace.requests[idx].at_ms;
      std::lock_guard lock(mu);
      if (r.ok) {
        f.latency_ms[idx] = ms;
        f.ok[idx] = true;
      } else if (f.failed++ == 0) {
        f.first_error = std::move(r.error);
      }
    }
  };
  std::vector<std::thread> senders;
  for (int i = 0; i < options.senders; ++i) senders.emplace_back(sender);
  std::atomic<bool> sampling{true};
  std::thread sampler;
  if (sample) {
    sampler = std::thread([&] {
      auto last = steady::now();
      while (sampling) {
        std::this_thread::sleep_for(options.sample_every);
        const auto now = steady::now();
        sample(std::chrono::duration<double>(now - last).count());
        last = now;
      }
    });
  }
  for (size_t i = 0; i < n; ++i) {
    std::this_thread::sleep_until(
        t0 + std::chrono::microseconds(static_cast<int64_t>(trace.requests[i].at_ms * 1000)));
    std::lock_guard lock(mu);
    queue.push_back(i);
    cv.notify_one();
  }
  {
    std::lock_guard lock(mu);
    done = true;
    cv.notify_all();
  }
  for (auto& t : senders) t.join();
  sampling = false;
  if (sampler.joinable()) sampler.join();
  f.p50_ms = percentile(f.latency_ms, 0.5);
  f.p99_ms = percentile(f.latency_ms, 0.99);
  return f;
}

}  // namespace moss::bench
