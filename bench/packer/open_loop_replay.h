// The open-loop trace replay both replaying packer benches share (packer_trace_bench against a
// pool in-process, packer_stack_bench through FnPacker's API): each request of the trace is
// handed at its scheduled time to one of a pool of sender threads, its latency counts from that
// scheduled time (so a slow answer delays no later request), and a failed request counts as the
// deadline in the percentiles. A sampler reads the pools' status periodically meanwhile.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "trace.h"

namespace moss::bench {

struct ReplayOptions {
  int senders = 160;         // concurrent requests at most (one thread each)
  double deadline_ms = 5000;  // a failed request's latency in the percentiles
  std::chrono::milliseconds sample_every{200};
};

// What one request came to: ok, or the error a person reads.
struct SendOutcome {
  bool ok = false;
  std::string error;
};

struct ReplayFigures {
  std::vector<double> latency_ms;  // per request of the trace (a failure: the deadline)
  std::vector<bool> ok;            // per request
  size_t failed = 0;
  std::string first_error;
  double p50_ms = 0, p99_ms = 0;  // over all requests
};

// `send(i)` sends request i of the trace (called from the sender threads, concurrently) and says
// how it ended; `sample(seconds since the last call)` runs every `sample_every` on its own thread
// until the last request is answered (may be empty).
ReplayFigures replay_open_loop(const Trace& trace, const ReplayOptions& options,
                               const std::function<SendOutcome(size_t)>& send,
                               const std::function<void(double)>& sample = {});


}  // namespace moss::bench
