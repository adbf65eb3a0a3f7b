#include "common/config_command_line.h"

#include <algorithm>
#include <cstdlib>

namespace moss {

ConfigCommandLine::ConfigCommandLine(CLI::App& app, const Config& config,
                                     std::vector<std::string> legacy_file_env)
    : legacy_file_env_(std::move(legacy_file_env)) {
  std::string file_help = "JSON configuration file (else $" + config.file_env_name();
  for (const auto& name : legacy_file_env_) file_help += ", $" + name;
  app.add_option("--config", config_file_, file_help + ")");
  app.add_flag("--print-config", print_config_, "print the effective configuration, with the source of each value, and exit");
  for (const SettingSpec& s : config.specs()) {
    // The default goes in the help text, not to CLI11: an unset flag must stay unset (count 0).
    std::string help = s.help + " [env " + config_env_name(s.key);
    help += s.default_value ? (s.secret ? "]" : ", default " + (s.default_value->empty() ? "\"\"" : *s.default_value) + "]")
                            : ", required]";
    CLI::Option* opt = app.add_option(config.flag_name(s.key), text_[s.key], help);
    if (s.type == SettingType::kBool) opt->expected(0, 1);  // "--sim" alone means true
    options_[s.key] = opt;
  }
}

Status ConfigCommandLine::load(Config& config, const EnvLookup& env) const {
  const EnvLookup lookup = env ? env : [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
  std::string file = config_file_;
  std::vector<std::string> file_vars = {config.file_env_name()};
  file_vars.insert(file_vars.end(), legacy_file_env_.begin(), legacy_file_env_.end());
  for (const auto& name : file_vars) {
    if (!file.empty()) break;
    if (auto v = lookup(name)) file = *v;
  }
  if (!file.empty()) MOSS_RETURN_IF_ERROR(config.load_file(file));
  MOSS_RETURN_IF_ERROR(env ? config.load_env(env) : config.load_env());
  for (const auto& [key, opt] : options_) {
    if (opt->count() == 0) continue;
    const std::string& text = text_.at(key);
    const bool bare_bool = text.empty() && config.specs().end() !=
        std::find_if(config.specs().begin(), config.specs().end(),
                     [&](const SettingSpec& s) { return s.key == key && s.type == SettingType::kBool; });
    MOSS_RETURN_IF_ERROR(config.set_flag(key, bare_bool ? "true" : text, config.flag_name(key)));
  }
  return Status::Ok();
}

}  // namespace moss
