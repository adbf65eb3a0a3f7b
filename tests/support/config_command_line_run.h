// Runs a service's command line as its main() does (ConfigCommandLine, then load()) with an
// injected environment, for the tests of each service's settings table.
#pragma once

#include "common/config_command_line.h"

#include <map>
#include <string>
#include <vector>

namespace moss::test_support {

// `args`: the command line after the program name, split at spaces.
inline Status load_command_line(Config& config, const std::string& args,
                                std::map<std::string, std::string> env = {},
                                std::vector<std::string> legacy_file_env = {}) {
  CLI::App app{"test"};
  ConfigCommandLine command_line(app, config, std::move(legacy_file_env));
  try {
    app.parse(args, /*program_name_included=*/false);
  } catch (const CLI::ParseError& e) {
    return invalid_argument("command line: {}", e.what());
  }
  return command_line.load(config, [env = std::move(env)](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
  });
}

}  // namespace moss::test_support
