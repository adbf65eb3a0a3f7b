// EtcdClient: the few etcd v3 calls the KeyService's etcd state store needs (range, txn with
// compares, lease grant), over etcd's HTTP/JSON gateway (/v3/kv/range, /v3/kv/txn,
// /v3/lease/grant; keys and values base64, 64-bit integers as decimal strings) with MOSS's own
// HTTP client (net/client.h).
//
// Why the gateway and not gRPC: Debian 12 has libgrpc++-dev (1.51), but linking it into the TEE
// binary brings gRPC core (libgrpc29 alone is 12 MB installed), abseil, c-ares and re2: a large
// code base to load into the enclave, measure and trust, for three calls. The gateway is served
// by every etcd v3.4+ member on its client port and costs the KeyService no new dependency.
//
// Endpoints are tried in order: a call that fails with unavailable (cannot connect, connection
// lost) or a 5xx (e.g. no leader) moves to the next endpoint and is sent again, at most once per
// endpoint. A resent txn may have been applied the first time; callers make their txns safe to
// resend (compare-and-swap: the resend's compare fails and the caller re-reads).
// Errors: unavailable (every endpoint failed), failed-precondition with reason
// kEtcdRevisionCompacted (a read at a revision etcd compacted away), internal (a request etcd
// refused, with its message, reason kEtcdLeaseNotFound for an expired or revoked lease; or an
// answer that does not parse).
// Thread-safe (one mutex around the one connection).
#pragma once

#include "common/status.h"
#include "net/client.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moss::store {

inline constexpr char kEtcdRevisionCompacted[] = "etcd-revision-compacted";
inline constexpr char kEtcdLeaseNotFound[] = "etcd-lease-not-found";

struct EtcdKv {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

struct EtcdRangeResult {
  int64_t revision = 0;  // the store's revision the read saw
  std::vector<EtcdKv> kvs;
  bool more = false;     // the limit cut it short
};

// [key, range_end) (range_end empty: the one key), at `revision` (0: the latest, linearizable).
struct EtcdRange {
  std::string key;
  std::string range_end;
  int64_t limit = 0;
  int64_t revision = 0;

  static EtcdRange one(std::string key, int64_t revision = 0) {
    return {std::move(key), "", 0, revision};
  }
};

// A txn operation: a put (with a lease when lease != 0), a delete of one key, or a range.
struct EtcdOp {
  enum Kind { kPut, kDelete, kRange } kind = kPut;
  std::string key;
  std::string value;
  int64_t lease = 0;
  EtcdRange range;  // kRange

  static EtcdOp put(std::string key, std::string value, int64_t lease = 0) {
    return {kPut, std::move(key), std::move(value), lease, {}};
  }
  static EtcdOp del(std::string key) { return {kDelete, std::move(key), "", 0, {}}; }
  static EtcdOp get(EtcdRange range) { return {kRange, "", "", 0, std::move(range)}; }
};

// compare: the key's mod_revision (kMod) or create_revision (kCreate, 0 when absent) equals value.
struct EtcdCompare {
  enum Target { kMod, kCreate } target = kMod;
  std::string key;
  int64_t value = 0;
};

struct EtcdTxnResult {
  bool succeeded = false;
  int64_t revision = 0;
  std::vector<EtcdRangeResult> ranges;  // one per range op of the branch that ran, in order
};

struct EtcdClientOptions {
  std::vector<std::string> endpoints;  // "http://host:port" (https needs `tls`)
  net::ClientTlsContextPtr tls;
  std::chrono::milliseconds timeout{5'000};  // connect, and each call
};

class EtcdClient {
 public:
  static Result<std::unique_ptr<EtcdClient>> create(EtcdClientOptions options);

  Result<EtcdRangeResult> range(const EtcdRange& range);
  Result<EtcdTxnResult> txn(const std::vector<EtcdCompare>& compare,
                            const std::vector<EtcdOp>& success, const std::vector<EtcdOp>& failure);
  // A lease of `ttl_s` seconds; its id.
  Result<int64_t> lease_grant(int64_t ttl_s);

  // The range end that covers every key starting with `prefix`.
  static std::string prefix_end(std::string_view prefix);

  const std::vector<std::string>& endpoints() const { return options_.endpoints; }
  // HTTP requests sent to etcd so far (each endpoint tried counts): what a call costs.
  uint64_t round_trips() const { return round_trips_.load(std::memory_order_relaxed); }

 private:
  explicit EtcdClient(EtcdClientOptions options) : options_(std::move(options)) {}
  // POSTs `body` to `path` on the current endpoint, failing over as the header says.
  Result<std::string> call(std::string_view path, const std::string& body);

  const EtcdClientOptions options_;
  std::mutex mu_;
  size_t current_ = 0;                  // guarded by mu_
  std::optional<net::Client> client_;   // guarded by mu_: a connection to endpoints[current_]
  std::atomic<uint64_t> round_trips_{0};
};

}  // namespace moss::store
