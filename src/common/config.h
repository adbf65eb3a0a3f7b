// Configuration: declared settings with layered values, documented in docs/configuration.md.
//
// Each binary declares its settings in a table of SettingSpec (key, type, default, help, secret).
// A value can come from four layers; the highest one present wins, whatever order they are loaded:
//   built-in default  <  config file (JSON)  <  environment (MOSS_*)  <  command-line flag
// Keys are dotted lower-case names whose segments match [a-z][a-z0-9-]* ("keyservice.listen",
// "worker.key-cache-ttl"); '_' is not allowed in keys, so the mapping to an environment name is
// one-way and simple: "MOSS_" + upper-case key with '.' and '-' turned into '_'
// (worker.key-cache-ttl -> MOSS_WORKER_KEY_CACHE_TTL). create() rejects a table in which two keys
// map to the same environment or flag name.
//
// Types: string, int (64-bit), bool (true/false/1/0/yes/no/on/off), duration ("250ms", "300s",
// "5m", "2h", "1h30m"), bytes ("512MiB", "2GiB", "64KB", "4096"). Every value is checked when it is
// loaded, and the error names the key and where the value came from:
//   "setting worker.port: env MOSS_WORKER_PORT: 'abc' is not an integer".
// Unknown keys in a file are errors (a typo must not be silently ignored). Secret settings are
// masked in dump() and in error messages and wiped when the Config is destroyed.
//
// A service's Config has a scope ("keyservice", "worker", "packer"): every key starts with it, its
// file is named by MOSS_<SCOPE>_CONFIG, its flags drop the scope (keyservice.state-dir ->
// --state-dir), and its file may write keys without the scope ({"listen": ...}). In a file, '_'
// reads as '-' ("model_store" is worker.model-store). common/config_command_line.h registers the
// flags from the same table; see docs/configuration.md.
// Not thread-safe while loading; read-only use after loading is safe from many threads.
#pragma once

#include "common/host_port.h"
#include "common/secret_bytes.h"
#include "common/status.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moss {

enum class SettingType { kString, kInt, kBool, kDuration, kBytes };
// In increasing precedence.
enum class ConfigSource { kDefault = 0, kFile = 1, kEnv = 2, kFlag = 3 };

std::string_view setting_type_name(SettingType type);  // "string", "int", ...

struct SettingSpec {
  std::string key;
  SettingType type = SettingType::kString;
  // Written as in a file or on the command line ("5m", "512MiB"); nullopt makes it required.
  std::optional<std::string> default_value;
  std::string help;
  bool secret = false;
  // Extra environment names read below the MOSS_ name, e.g. "PORT" for platforms that set it.
  std::vector<std::string> env_aliases = {};
  // A JSON object given for it in a file is taken as its text (an inline policy document).
  bool json_object = false;
};

// Looks up one environment variable; nullopt when unset. Injected so tests need no setenv.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

class Config {
 public:
  // Validates the table: key syntax, no duplicates, no key nested under another, distinct
  // environment and flag names, defaults that parse as their type. With a scope, every key must
  // start with "<scope>." and "<scope>.config" is reserved (its name is the file's variable).
  static Result<Config> create(std::vector<SettingSpec> specs, std::string scope = {});

  Config(Config&&) noexcept = default;
  Config& operator=(Config&&) noexcept = default;
  Config(const Config&) = delete;
  Config& operator=(const Config&) = delete;
  ~Config();

  // The file layer from a JSON object (names resolved by key_for); nested objects flatten to dotted keys, and a dotted key may
  // also be written as is ({"keyservice": {"listen": ...}} or {"keyservice.listen": ...}).
  // Fails on unknown keys (with a suggestion), duplicates, and values of the wrong JSON type.
  Status load_file(const std::filesystem::path& path);
  Status load_json(std::string_view text, std::string_view origin);

  // The environment layer: for each setting, its MOSS_ name, then its aliases. load_env() reads
  // the process environment and logs a warning for MOSS_ variables that name no setting.
  Status load_env();
  Status load_env(const EnvLookup& lookup);

  // The flag layer. `flag` is how the user wrote it, for messages ("--port").
  Status set_flag(std::string_view key, std::string_view value, std::string_view flag);
  // Flags given on the command line, by key; each is reported as flag_name(key).
  Status load_flags(const std::map<std::string, std::string>& values_by_key);

  // The declared key a name in a file (or an /init value) means: the name itself, or with the
  // scope put in front, '_' read as '-'. nullopt when it names no setting.
  std::optional<std::string> key_for(std::string_view name) const;
  // The flag of a key as the user types it: "--state-dir" for keyservice.state-dir.
  std::string flag_name(std::string_view key) const;
  // The environment variable naming the config file: MOSS_<SCOPE>_CONFIG (MOSS_CONFIG unscoped).
  std::string file_env_name() const;
  const std::string& scope() const { return scope_; }

  // Typed getters. Errors: unknown key or wrong type asked (a bug in the caller), a required
  // setting with no value, or a value that does not parse (naming key and source).
  Result<std::string> get_string(std::string_view key) const;
  Result<int64_t> get_int(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::chrono::milliseconds> get_duration(std::string_view key) const;
  Result<uint64_t> get_bytes(std::string_view key) const;
  // The same with a check beyond the type, whose error also names the setting and its source:
  // the value when lo <= value <= hi ("setting keyservice.threads: flag --threads: 0 is not in
  // [1, 256]"); a "host:port" (common/host_port.h). Which bounds make sense is the binary's call.
  Result<int64_t> get_int_in(std::string_view key, int64_t lo, int64_t hi) const;
  Result<std::chrono::milliseconds> get_duration_in(std::string_view key, std::chrono::milliseconds lo,
                                                    std::chrono::milliseconds hi) const;
  Result<HostPort> get_host_port(std::string_view key) const;
  // A string setting's value as SecretBytes, for settings marked secret.
  Result<SecretBytes> get_secret(std::string_view key) const;

  // Where the effective value came from: "default", "file /etc/moss.json", "env MOSS_X",
  // "flag --x", or "unset".
  Result<std::string> source_of(std::string_view key) const;
  // Every required setting has a value and every value parses.
  Status validate() const;
  // One line per setting: key = value (source); secrets print as <secret>.
  std::string dump() const;

  const std::vector<SettingSpec>& specs() const { return specs_; }

 private:
  struct Value {
    std::string text;
    std::string origin;  // "env MOSS_X", ...
  };
  struct Entry {
    size_t spec_index = 0;
    std::array<std::optional<Value>, 4> layers;  // indexed by ConfigSource
  };

  Config() = default;
  static const Value* top(const Entry& e);  // highest layer present, or nullptr
  const Entry* find(std::string_view key) const;
  Result<const Entry*> effective(std::string_view key, SettingType type) const;
  Status set(std::string_view key, ConfigSource source, std::string text, std::string origin);
  Status check(const Entry& e, const Value& v) const;

  std::string scope_;
  std::vector<SettingSpec> specs_;
  std::map<std::string, Entry, std::less<>> entries_;
};

// MOSS_KEYSERVICE_LISTEN for keyservice.listen.
std::string config_env_name(std::string_view key);
// keyservice-listen for keyservice.listen (the binary prefixes "--").
std::string config_flag_name(std::string_view key);

// Parsers used for the typed settings; errors quote the text and say what was expected.
Result<int64_t> parse_config_int(std::string_view text);
Result<bool> parse_config_bool(std::string_view text);
Result<std::chrono::milliseconds> parse_duration(std::string_view text);
Result<uint64_t> parse_byte_size(std::string_view text);
// "1h30m", "250ms", "0s": the shortest exact spelling, for dump().
std::string format_duration(std::chrono::milliseconds d);

}  // namespace moss
