// Backend: where a pool's instances run. One interface, two implementations:
//  - local (local_backend.h): moss-worker processes on loopback ports;
//  - openwhisk (openwhisk_backend.h): one OpenWhisk action per instance, over the REST API.
// Pool owns instances and decides when to start and stop them; a backend only carries that out.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "protocol/infer_result.h"

namespace moss::packer {

// One serving instance (a worker process, an OpenWhisk action). Thread-safe: a pool sends
// concurrent requests to one instance (up to its concurrency limit).
class Instance {
 public:
  virtual ~Instance() = default;  // stops the instance if still running
  // Where it runs, for status ("127.0.0.1:40123", "action moss-default-i0").
  virtual std::string endpoint() const = 0;
  // Sends a C3 request body — the JSON `{"model_id","envelope"}`, or a binary request envelope
  // (docs/worker-api.md) — and returns the worker's C3 result, in the encoding it answered in: a
  // result, or a sealed error (the worker's answer to the user, passed on). Any other worker error
  // comes back as the Status it described (its code and message); transport problems as
  // unavailable / deadline-exceeded.
  virtual Result<protocol::InferResult> invoke(std::string_view body, std::chrono::milliseconds timeout) = 0;
  // Restarts after crashes so far (local backend); 0 where the platform restarts by itself.
  virtual int restarts() const { return 0; }
  // Stops it now (idempotent).
  virtual void stop() = 0;
};
using InstancePtr = std::unique_ptr<Instance>;

// Thread-safe: a pool starts instances from several threads at once.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view kind() const = 0;
  // Starts an instance and returns once it accepts requests (blocking; fails after the
  // backend's start timeout). `instance_id` is unique within the pool.
  virtual Result<InstancePtr> start(const std::string& instance_id) = 0;
};
using BackendPtr = std::unique_ptr<Backend>;

}  // namespace moss::packer
