// The command line of a service's settings, registered from the same table as its Config: one
// flag per setting (the key without the scope: keyservice.state-dir -> --state-dir; a bool flag
// may stand alone for "true"), --config FILE and --print-config. After CLI11 has parsed, load()
// applies the file (--config, else MOSS_<SCOPE>_CONFIG, else the binary's older names for it),
// the environment and the flags; the Config's layers then give default < file < env < flag.
// docs/configuration.md. Owned by main(); CLI11 keeps pointers into it, so it does not move.
#pragma once

#include "common/config.h"

#include <CLI/CLI.hpp>

#include <map>
#include <string>
#include <vector>

namespace moss {

class ConfigCommandLine {
 public:
  // `legacy_file_env`: older variables that named the file, read after MOSS_<SCOPE>_CONFIG.
  ConfigCommandLine(CLI::App& app, const Config& config, std::vector<std::string> legacy_file_env = {});
  ConfigCommandLine(const ConfigCommandLine&) = delete;
  ConfigCommandLine& operator=(const ConfigCommandLine&) = delete;

  // Loads the layers into `config` (the one given to the constructor). `env` null: the process
  // environment, warning about MOSS_<SCOPE>_* variables that name no setting.
  Status load(Config& config, const EnvLookup& env = nullptr) const;
  // --print-config was given: the binary prints config.dump() and exits.
  bool print_requested() const { return print_config_; }

 private:
  std::vector<std::string> legacy_file_env_;
  std::string config_file_;
  bool print_config_ = false;
  std::map<std::string, std::string> text_;        // key -> flag text
  std::map<std::string, CLI::Option*> options_;    // key -> its flag
};

}  // namespace moss
