// `moss up` and `moss down`: the one-machine MOSS stack (KeyService + FnPacker with its local
// backend; workers start on demand) for a trial or the demo. Logic in src/client/stack.h.
#include "apps/moss/command.h"
#include "client/stack.h"

#include <cstdio>
#include <memory>

namespace moss::cli {
namespace {

struct UpFlags {
  std::string state_dir;
  uint16_t port_keyservice = 7443;
  uint16_t port_packer = 8088;
  std::string bin_dir;
  bool foreground = false;
  int ready_timeout_s = 30;
  int keyservice_replicas = 1;
};

Status run_up(const UpFlags& f) {
  client::StackOptions options;
  options.state_dir =
      f.state_dir.empty() ? client::default_stack_dir() : std::filesystem::path(f.state_dir);
  options.port_keyservice = f.port_keyservice;
  options.port_packer = f.port_packer;
  options.bin_dir = f.bin_dir.empty() ? client::self_bin_dir() : std::filesystem::path(f.bin_dir);
  options.ready_timeout = std::chrono::seconds(f.ready_timeout_s);
  options.keyservice_replicas = f.keyservice_replicas;
  if (f.foreground) {
    return client::run_stack(options, [](const client::StackInfo& info) {
      std::printf("%s  (foreground: Ctrl-C stops it)\n", client::describe_stack(info).c_str());
      std::fflush(stdout);
    });
  }
  MOSS_ASSIGN_OR_RETURN(auto info,
                        client::start_stack_detached(options, client::self_bin_dir() / "moss"));
  std::printf("%s", client::describe_stack(info).c_str());
  return Status::Ok();
}

Status run_down(const std::string& state_dir, int timeout_s) {
  std::filesystem::path dir =
      state_dir.empty() ? client::default_stack_dir() : std::filesystem::path(state_dir);
  MOSS_ASSIGN_OR_RETURN(std::string what, client::stop_stack(dir, std::chrono::seconds(timeout_s)));
  std::printf("moss down: %s\n", what.c_str());
  return Status::Ok();
}

}  // namespace

void register_stack_commands(CLI::App& root) {
  auto up_flags = std::make_shared<UpFlags>();
  CLI::App* up = root.add_subcommand(
      "up", "Start a local MOSS stack (KeyService + FnPacker, simulated TEE) for a trial");
  up->add_option("--state-dir", up_flags->state_dir,
                 "State directory (default $MOSS_STACK_DIR or ~/.local/state/moss/stack)");
  up->add_option("--port-keyservice", up_flags->port_keyservice, "KeyService port (0: any free)")
      ->capture_default_str();
  up->add_option("--port-packer", up_flags->port_packer, "FnPacker port (0: any free)")
      ->capture_default_str();
  up->add_option("--bin-dir", up_flags->bin_dir,
                 "Directory of moss-keyservice, moss-packer, moss-worker (default: next to moss)");
  up->add_option("--ready-timeout", up_flags->ready_timeout_s, "Seconds to wait for readiness")
      ->capture_default_str();
  up->add_option("--keyservice-replicas", up_flags->keyservice_replicas,
                 "KeyService replicas; more than 1: over a 3-member etcd on loopback (etcd from PATH), "
                 "clients and workers fail over between them")
      ->check(CLI::Range(1, 7))
      ->capture_default_str();
  up->add_flag("--foreground", up_flags->foreground,
               "Stay in the foreground; Ctrl-C (SIGINT) or SIGTERM stops the stack");
  bind(up, [up_flags] { return run_up(*up_flags); });

  auto down_dir = std::make_shared<std::string>();
  auto down_timeout = std::make_shared<int>(20);
  CLI::App* down = root.add_subcommand("down", "Stop the local MOSS stack started by `moss up`");
  down->add_option("--state-dir", *down_dir, "State directory given to `moss up`");
  down->add_option("--timeout", *down_timeout, "Seconds to wait before killing")
      ->capture_default_str();
  bind(down, [down_dir, down_timeout] { return run_down(*down_dir, *down_timeout); });
}

}  // namespace moss::cli
