// What `moss up` runs: the command lines of moss-keyservice and moss-packer, the attestation
// policies and client config it writes, and the worker pool it creates. Kept apart from the
// supervision logic in stack.cc because this is the part that follows the services' flags.
// Stateless functions; thread-safe.
#pragma once

#include "client/stack_state.h"
#include "common/status.h"
#include "common/subprocess.h"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

namespace moss::client {

inline constexpr char kKeyServiceBinary[] = "moss-keyservice";
inline constexpr char kPackerBinary[] = "moss-packer";
inline constexpr char kWorkerBinary[] = "moss-worker";
inline constexpr char kEtcdBinary[] = "etcd";  // Debian's etcd-server, found on PATH
// Identity strings mixed into the simulated measurements (attest/simulated.h).
inline constexpr char kKeyServiceSimIdentity[] = "moss-keyservice";
inline constexpr char kWorkerSimIdentity[] = "moss-worker";
inline constexpr char kStackPool[] = "default";
// Set in every service's environment (and so inherited by the workers the packer starts), so that
// `moss down` can recognise the stack's processes after a supervisor crash.
inline constexpr char kStackDirEnv[] = "MOSSUP_STATE_DIR";  // not MOSS_*: no config warning

// Writes the two simulated-TEE policies: which worker the KeyService releases keys to, and which
// KeyService the workers and clients trust.
Status write_stack_policies(const StackLayout& layout);

// Writes the client config (C2) with `identity` and `state_dir` relative, so a copy in a
// principal's directory (next to its identity.pem) works as that principal's config.
Status write_client_config(const StackLayout& layout);

// The services, each in a process group of its own that dies with the supervisor, output
// appended to STATE/logs/<name>.log.
SubprocessSpec keyservice_spec(const StackLayout& layout);
SubprocessSpec packer_spec(const StackLayout& layout);

// With KeyService replicas (layout.keyservice_replicas > 1): etcd member `m` ("etcd<m>", data in
// STATE/etcd/m<m>; not-found when etcd is not installed), and replica `i` ("keyservice<i>", state
// in STATE/keyservice/replica<i>) over them. Replica 0 creates the state key on the first start;
// the others join it over its replica port (the local simulated policy, both ways). Replica i
// talks to member i first. The same specs restart a member or replica that died.
Result<SubprocessSpec> etcd_member_spec(const StackLayout& layout, size_t member);
SubprocessSpec keyservice_replica_spec(const StackLayout& layout, size_t replica);
// Waits until etcd member `m` answers a linearizable read (its cluster has a leader).
Status wait_etcd_serving(const StackLayout& layout, size_t member,
                         std::chrono::steady_clock::time_point deadline);

// Creates the stack's worker pool (local backend) on the packer; returns its name.
Result<std::string> create_stack_pool(const StackLayout& layout,
                                      std::chrono::steady_clock::time_point deadline);

}  // namespace moss::client
