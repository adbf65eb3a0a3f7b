// The local MOSS stack behind `moss up` / `moss down`: a KeyService and an FnPacker (local backend;
// it starts moss-worker processes on demand) on loopback, with the simulated TEE, under one state
// directory:
//   STATE/stack.pid             pid of the supervisor (`moss up --foreground` or its detached twin)
//   STATE/stack.lock            held (flock) by the supervisor for its whole life
//   STATE/stack.json            written when every service is ready (StackInfo), removed on stop
//   STATE/client.json           client config (C2) for owners and users; copy it into a principal's
//                               directory: its `identity` and `state_dir` are relative to the copy
//   STATE/logs/{stack,keyservice,packer}.log
//   STATE/keyservice/           KeyService state (--keyservice-replicas: replica<i>/ each, and
//                               STATE/etcd/ the etcd members' data and ports.json); STATE/models/
//                               the model store; STATE/sim/ the simulated platform key;
//                               STATE/policies/ both attestation policies
//   STATE/packer-token          the FnPacker operator token (0600)
// Simulated TEE only: this is the one-machine trial, never a deployment (docs/deploy.md).
// The parts: stack_state.h (layout, preparation), stack_lock.h (one supervisor per directory),
// stack_info.h (stack.json), stack_services.h (the services' command lines), service_sweep.h
// (cleanup after a killed supervisor); this file is the supervisor itself.
// Thread-compatible: one supervisor per state directory (enforced by the lock).
#pragma once

#include "client/stack_info.h"
#include "common/status.h"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace moss::client {

struct StackOptions {
  std::filesystem::path state_dir;
  uint16_t port_keyservice = 7443;  // 0: pick a free loopback port
  uint16_t port_packer = 8088;      // 0: pick a free loopback port
  std::filesystem::path bin_dir;    // where moss-keyservice, moss-packer, moss-worker are
  // > 1: that many KeyService replicas over a 3-member etcd on loopback (etcd from PATH, data in
  // STATE/etcd/), clients and workers given every replica's URL (docs/keyservice.md).
  int keyservice_replicas = 1;
  std::chrono::seconds ready_timeout{30};
};

// The default state directory: $MOSS_STACK_DIR, else $XDG_STATE_HOME/moss/stack, else
// ~/.local/state/moss/stack.
std::filesystem::path default_stack_dir();

// The directory of the running executable (where `moss` finds the service binaries by default).
std::filesystem::path self_bin_dir();

// Runs the stack in this process until SIGINT or SIGTERM (forwarded to the services in order:
// packer first, which stops its workers, then the KeyService) or until a service dies. Calls
// `on_ready` once every service answers. Fails when another supervisor holds the state directory.
Status run_stack(const StackOptions& options,
                 const std::function<void(const StackInfo&)>& on_ready);

// Starts `<moss> up --foreground ...` detached (own session, output in logs/stack.log) and waits
// until stack.json appears; fails with the log's tail when the supervisor exits first.
Result<StackInfo> start_stack_detached(const StackOptions& options,
                                       const std::filesystem::path& moss_binary);

// Stops the supervisor of `state_dir` (SIGTERM; SIGKILL after `timeout`) and waits for it.
// Returns a one-line description; "not running" when nothing holds the lock.
Result<std::string> stop_stack(const std::filesystem::path& state_dir,
                               std::chrono::seconds timeout);

}  // namespace moss::client
