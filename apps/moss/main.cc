// moss: the command-line client for model owners and users. Thin: parses flags, runs the
// selected command (its logic lives in src/client and the parts below), maps errors to exit codes.
#include "apps/moss/command.h"
#include "common/logging.h"

#include <cstdio>

namespace moss::cli {
Action& selected_action() {
  static Action action;
  return action;
}
}  // namespace moss::cli

int main(int argc, char** argv) {
  using namespace moss;
  CLI::App app{"moss: secure serverless model inference on sensitive data"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "moss 0.1.0");
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();

  CLI::App* model = app.add_subcommand("model", "Encrypt, decrypt, inspect and run models");
  model->require_subcommand(1);
  cli::register_identity_commands(app);
  cli::register_model_crypt_commands(*model);
  cli::register_model_engine_commands(*model);
  cli::register_attest_commands(app);
  cli::register_stack_commands(app);
  cli::register_keyservice_commands(app, *model);
  cli::register_infer_commands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!log::set_level(log_level)) {
    std::fprintf(stderr, "moss: error: unknown log level '%s'\n", log_level.c_str());
    return 2;
  }
  if (!cli::selected_action()) return 0;
  Status status = cli::selected_action()();
  if (!status.ok()) {
    std::fprintf(stderr, "moss: error: %s\n", status.message().c_str());
    return 1;
  }
  return 0;
}
