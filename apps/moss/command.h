// How `moss` subcommands are wired: each group registers its subcommands on a CLI11 node and
// binds an action that returns a Status. main() runs the one selected action after parsing,
// prints a failing Status as one line on stderr and exits non-zero.
#pragma once

#include "common/status.h"

#include <CLI/CLI.hpp>

#include <functional>

namespace moss::cli {

using Action = std::function<Status()>;

// Set by the parsed subcommand's callback; run by main().
Action& selected_action();

inline void bind(CLI::App* cmd, Action action) {
  cmd->callback([action = std::move(action)] { selected_action() = action; });
}

// Registration functions, one per file in apps/moss/. `root` is the top-level app; `model` is
// the shared `moss model` group that several parts add to.
void register_identity_commands(CLI::App& root);
void register_model_crypt_commands(CLI::App& model);
void register_model_engine_commands(CLI::App& model);
void register_attest_commands(CLI::App& root);
void register_stack_commands(CLI::App& root);
void register_keyservice_commands(CLI::App& root, CLI::App& model);
void register_infer_commands(CLI::App& root);

}  // namespace moss::cli
