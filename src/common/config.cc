#include "common/config.h"

#include "common/file_util.h"
#include "common/logging.h"
#include "common/strict_json.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <set>

extern char** environ;

namespace moss {
namespace {

constexpr size_t kMaxConfigFileBytes = 1 << 20;
constexpr std::string_view kMasked = "<secret>";

bool valid_segment(std::string_view s) {
  if (s.empty() || s[0] < 'a' || s[0] > 'z') return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

bool valid_key(std::string_view key) {
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    if (!valid_segment(key.substr(start, dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Reads a leading run of decimal digits as an unsigned number; nullopt on overflow or no digits.
std::optional<uint64_t> take_number(std::string_view& s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p == s.data()) return std::nullopt;
  s.remove_prefix(static_cast<size_t>(p - s.data()));
  return v;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

// A JSON scalar (or a string setting's array of strings) as the text the typed parsers read;
// objects (but for a json_object setting), other arrays, null and floats are refused.
Result<std::string> json_to_text(const nlohmann::ordered_json& v, const SettingSpec& spec) {
  const SettingType type = spec.type;
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && spec.json_object) return v.dump();
  // A list (several URLs, endpoints): an array of strings, read as the comma-separated text.
  if (v.is_array() && type == SettingType::kString) {
    std::string out;
    for (const auto& e : v) {
      if (!e.is_string()) return invalid_argument("a list setting must be an array of strings");
      out += (out.empty() ? "" : ",") + e.get<std::string>();
    }
    return out;
  }
  if (v.is_boolean() && (type == SettingType::kBool || type == SettingType::kString)) {
    return std::string(v.get<bool>() ? "true" : "false");
  }
  if (v.is_number_integer() && (type == SettingType::kInt || type == SettingType::kBytes)) {
    return v.is_number_unsigned() ? std::to_string(v.get<uint64_t>()) : std::to_string(v.get<int64_t>());
  }
  if (v.is_number() && type == SettingType::kDuration) {
    return invalid_argument("a duration needs a unit, e.g. \"30s\" or \"250ms\"");
  }
  return invalid_argument("expected a {} but the file has a JSON {}", setting_type_name(type), v.type_name());
}

}  // namespace

std::string_view setting_type_name(SettingType type) {
  switch (type) {
    case SettingType::kString: return "string";
    case SettingType::kInt: return "int";
    case SettingType::kBool: return "bool";
    case SettingType::kDuration: return "duration";
    case SettingType::kBytes: return "bytes";
  }
  return "unknown";
}

std::string config_env_name(std::string_view key) {
  std::string out = "MOSS_";
  for (char c : key) {
    out.push_back(c == '.' || c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

std::string config_flag_name(std::string_view key) {
  std::string out(key);
  std::replace(out.begin(), out.end(), '.', '-');
  return out;
}

Result<int64_t> parse_config_int(std::string_view text) {
  std::string_view s = trim(text);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
    return invalid_argument("'{}' is not an integer", text);
  }
  return v;
}

Result<bool> parse_config_bool(std::string_view text) {
  const std::string s = lower(trim(text));
  if (s == "true" || s == "1" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "0" || s == "no" || s == "off") return false;
  return invalid_argument("'{}' is not a boolean (true/false, 1/0, yes/no, on/off)", text);
}

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  static constexpr struct { std::string_view unit; uint64_t ms; } kUnits[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};
  // Far beyond any sensible timeout, and far below int64 overflow.
  constexpr uint64_t kMaxMs = uint64_t{100} * 365 * 86'400'000;
  auto bad = [&] {
    return invalid_argument("'{}' is not a duration (e.g. 250ms, 30s, 5m, 2h, 1h30m)", text);
  };
  std::string_view s = trim(text);
  if (s == "0") return std::chrono::milliseconds(0);
  if (s.empty()) return bad();
  uint64_t total = 0;
  while (!s.empty()) {
    auto n = take_number(s);
    if (!n) return bad();
    size_t len = 0;
    while (len < s.size() && std::isalpha(static_cast<unsigned char>(s[len]))) ++len;
    const std::string_view unit = s.substr(0, len);
    s.remove_prefix(len);
    const auto* u = std::find_if(std::begin(kUnits), std::end(kUnits), [&](const auto& k) { return k.unit == unit; });
    if (u == std::end(kUnits)) return bad();
    if (*n > kMaxMs / u->ms || total + *n * u->ms > kMaxMs) {
      return invalid_argument("duration '{}' is too long", text);
    }
    total += *n * u->ms;
  }
  return std::chrono::milliseconds(static_cast<int64_t>(total));
}

Result<uint64_t> parse_byte_size(std::string_view text) {
  static constexpr struct { std::string_view unit; uint64_t mult; } kUnits[] = {
      {"", 1},           {"B", 1},          {"KB", 1000},      {"MB", 1000'000},
      {"GB", 1000'000'000}, {"TB", 1000'000'000'000}, {"KiB", uint64_t{1} << 10},
      {"MiB", uint64_t{1} << 20}, {"GiB", uint64_t{1} << 30}, {"TiB", uint64_t{1} << 40}};
  std::string_view s = trim(text);
  auto n = take_number(s);
  s = trim(s);
  const auto* u = std::find_if(std::begin(kUnits), std::end(kUnits), [&](const auto& k) { return k.unit == s; });
  if (!n || u == std::end(kUnits)) {
    return invalid_argument("'{}' is not a size (e.g. 4096, 64KiB, 512MiB, 2GiB, 10MB)", text);
  }
  if (*n > UINT64_MAX / u->mult) return invalid_argument("size '{}' is too large", text);
  return *n * u->mult;
}

std::string format_duration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  for (auto [unit, size] : {std::pair<const char*, int64_t>{"d", 86'400'000}, {"h", 3'600'000},
                            {"m", 60'000}, {"s", 1000}, {"ms", 1}}) {
    if (ms >= size) {
      out += std::to_string(ms / size) + unit;
      ms %= size;
    }
  }
  return out;
}

Result<Config> Config::create(std::vector<SettingSpec> specs, std::string scope) {
  Config c;
  if (!scope.empty() && (!valid_segment(scope))) return invalid_argument("config: bad scope '{}'", scope);
  c.scope_ = std::move(scope);
  std::set<std::string> env_names, flag_names;
  for (size_t i = 0; i < specs.size(); ++i) {
    const SettingSpec& s = specs[i];
    if (!valid_key(s.key)) {
      return invalid_argument("config: bad key '{}': segments must match [a-z][a-z0-9-]*", s.key);
    }
    if (!c.scope_.empty()) {
      if (!s.key.starts_with(c.scope_ + ".")) {
        return invalid_argument("config: key '{}' is not in scope '{}'", s.key, c.scope_);
      }
      // --config, --print-config and MOSS_<SCOPE>_CONFIG belong to the command line.
      if (s.key == c.scope_ + ".config" || s.key == c.scope_ + ".print-config") {
        return invalid_argument("config: key '{}' is reserved", s.key);
      }
    }
    if (!c.entries_.emplace(s.key, Entry{i, {}}).second) return invalid_argument("config: key '{}' declared twice", s.key);
    if (!env_names.insert(config_env_name(s.key)).second || !flag_names.insert(c.flag_name(s.key)).second) {
      return invalid_argument("config: key '{}' maps to the same environment or flag name as another key", s.key);
    }
    for (const auto& alias : s.env_aliases) {
      if (!env_names.insert(alias).second) return invalid_argument("config: environment name '{}' used twice", alias);
    }
  }
  // A key may not also be the parent of another ("a.b" and "a.b.c"): the file could not hold both.
  for (const auto& s : specs) {
    auto it = c.entries_.lower_bound(s.key + ".");
    if (it != c.entries_.end() && it->first.starts_with(s.key + ".")) {
      return invalid_argument("config: key '{}' is both a setting and a prefix of '{}'", s.key, it->first);
    }
  }
  c.specs_ = std::move(specs);
  for (auto& [key, e] : c.entries_) {
    const auto& d = c.specs_[e.spec_index].default_value;
    if (!d) continue;
    e.layers[0] = Value{*d, "default"};
    MOSS_RETURN_IF_ERROR(c.check(e, *e.layers[0]));
  }
  return c;
}

Config::~Config() {
  for (auto& [key, e] : entries_) {
    if (specs_.empty() || !specs_[e.spec_index].secret) continue;
    for (auto& layer : e.layers) {
      if (layer) secure_wipe(layer->text);
    }
  }
}

const Config::Entry* Config::find(std::string_view key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

Status Config::check(const Entry& e, const Value& v) const {
  const SettingSpec& spec = specs_[e.spec_index];
  Status s;
  switch (spec.type) {
    case SettingType::kString: break;
    case SettingType::kInt: s = parse_config_int(v.text).status(); break;
    case SettingType::kBool: s = parse_config_bool(v.text).status(); break;
    case SettingType::kDuration: s = parse_duration(v.text).status(); break;
    case SettingType::kBytes: s = parse_byte_size(v.text).status(); break;
  }
  if (s.ok()) return s;
  // The parsers quote the value; a secret's value must not reach a message.
  const std::string detail = spec.secret ? fmt::format("value is not a valid {}", setting_type_name(spec.type)) : s.message();
  return invalid_argument("setting {}: {}: {}", spec.key, v.origin, detail);
}

Status Config::set(std::string_view key, ConfigSource source, std::string text, std::string origin) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return invalid_argument("{}: unknown setting '{}'", origin, key);
  auto& layer = it->second.layers[static_cast<size_t>(source)];
  if (layer && specs_[it->second.spec_index].secret) secure_wipe(layer->text);
  layer = Value{std::move(text), std::move(origin)};
  return check(it->second, *layer);
}

Status Config::load_file(const std::filesystem::path& path) {
  MOSS_ASSIGN_OR_RETURN(std::string text, read_text_file(path, kMaxConfigFileBytes));
  Status s = load_json(text, fmt::format("file {}", path.string()));
  secure_wipe(text);  // the file may hold secret settings
  return s;
}

std::optional<std::string> Config::key_for(std::string_view name) const {
  std::string key(name);
  std::replace(key.begin(), key.end(), '_', '-');
  if (find(key) != nullptr) return key;
  if (!scope_.empty() && find(scope_ + "." + key) != nullptr) return scope_ + "." + key;
  return std::nullopt;
}

std::string Config::flag_name(std::string_view key) const {
  if (!scope_.empty() && key.starts_with(scope_ + ".")) key.remove_prefix(scope_.size() + 1);
  return "--" + config_flag_name(key);
}

std::string Config::file_env_name() const {
  return scope_.empty() ? std::string("MOSS_CONFIG") : config_env_name(scope_ + ".config");
}

Status Config::load_json(std::string_view text, std::string_view origin) {
  MOSS_ASSIGN_OR_RETURN(auto json, parse_json_strict(text, origin, 16));
  if (!json.is_object()) return invalid_argument("{}: the top level must be a JSON object", origin);
  std::set<std::string> seen;
  // Depth-first over nested objects; a leaf's path is its dotted key.
  std::function<Status(const nlohmann::ordered_json&, const std::string&)> walk =
      [&](const nlohmann::ordered_json& obj, const std::string& prefix) -> Status {
    for (const auto& [name, value] : obj.items()) {
      const std::string written = prefix.empty() ? name : prefix + "." + name;
      const std::optional<std::string> resolved = key_for(written);
      if (!resolved && value.is_object()) {
        MOSS_RETURN_IF_ERROR(walk(value, written));
        continue;
      }
      if (!resolved) {
        std::string hint;
        size_t best = 3;
        for (const auto& s : specs_) {
          std::string candidate = s.key;
          std::string typed = written;
          std::replace(typed.begin(), typed.end(), '_', '-');
          // Compare as written: without the scope when the file left it out.
          if (!scope_.empty() && !typed.starts_with(scope_ + ".")) candidate = s.key.substr(scope_.size() + 1);
          size_t d = edit_distance(typed, candidate);
          if (d < best) best = d, hint = fmt::format(" (did you mean '{}'?)", candidate);
        }
        return invalid_argument("{}: unknown key '{}'{}", origin, written, hint);
      }
      const std::string& key = *resolved;
      const Entry* e = find(key);
      if (!seen.insert(key).second) return invalid_argument("{}: key '{}' is set twice", origin, key);
      auto v = json_to_text(value, specs_[e->spec_index]);
      if (!v.ok()) return invalid_argument("setting {}: {}: {}", key, origin, v.status().message());
      MOSS_RETURN_IF_ERROR(set(key, ConfigSource::kFile, std::move(v).value(), std::string(origin)));
    }
    return Status::Ok();
  };
  return walk(json, "");
}

Status Config::load_env(const EnvLookup& lookup) {
  for (const auto& spec : specs_) {
    std::vector<std::string> names = {config_env_name(spec.key)};
    names.insert(names.end(), spec.env_aliases.begin(), spec.env_aliases.end());
    for (const auto& name : names) {
      auto v = lookup(name);
      if (!v) continue;
      MOSS_RETURN_IF_ERROR(set(spec.key, ConfigSource::kEnv, std::move(*v), "env " + name));
      break;  // the MOSS_ name wins over aliases
    }
  }
  return Status::Ok();
}

Status Config::load_env() {
  std::set<std::string> known;
  for (const auto& spec : specs_) known.insert(config_env_name(spec.key));
  // The file's variable names no setting. A scoped binary checks only its own prefix: the
  // environment it shares with the other services (and the client) holds their variables too.
  known.insert(file_env_name());
  const std::string prefix = scope_.empty() ? "MOSS_" : config_env_name(scope_) + "_";
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view var(*e);
    std::string_view name = var.substr(0, var.find('='));
    if (name.starts_with(prefix) && !known.contains(std::string(name))) {
      log::get("config")->warn("ignoring env {}: not a setting of this program", name);
    }
  }
  return load_env([](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    return v ? std::optional<std::string>(v) : std::nullopt;
  });
}

Status Config::set_flag(std::string_view key, std::string_view value, std::string_view flag) {
  return set(key, ConfigSource::kFlag, std::string(value), fmt::format("flag {}", flag));
}

Status Config::load_flags(const std::map<std::string, std::string>& values_by_key) {
  for (const auto& [key, value] : values_by_key) {
    MOSS_RETURN_IF_ERROR(set_flag(key, value, flag_name(key)));
  }
  return Status::Ok();
}

Result<const Config::Entry*> Config::effective(std::string_view key, SettingType type) const {
  const Entry* e = find(key);
  if (e == nullptr) return internal_error("config: setting '{}' is not declared", key);
  const SettingSpec& spec = specs_[e->spec_index];
  if (spec.type != type) {
    return internal_error("config: setting '{}' is a {}, read as a {}", key, setting_type_name(spec.type),
                          setting_type_name(type));
  }
  if (top(*e) != nullptr) return e;
  return invalid_argument("setting {} is required: set it in the config file, with env {} or with {}", key,
                          config_env_name(key), flag_name(key));
}

const Config::Value* Config::top(const Entry& e) {
  for (size_t i = e.layers.size(); i-- > 0;) {
    if (e.layers[i]) return &*e.layers[i];
  }
  return nullptr;
}

Result<std::string> Config::get_string(std::string_view key) const {
  MOSS_ASSIGN_OR_RETURN(const Entry* e, effective(key, SettingType::kString));
  return top(*e)->text;
}

Result<SecretBytes> Config::get_secret(std::string_view key) const {
  MOSS_ASSIGN_OR_RETURN(const Entry* e, effective(key, SettingType::kString));
  const std::string& t = top(*e)->text;
  return SecretBytes(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(t.data()), t.size()));
}

#define MOSS_CONFIG_GETTER(name, type_enum, ret, parser)                     \
  Result<ret> Config::name(std::string_view key) const {                     \
    MOSS_ASSIGN_OR_RETURN(const Entry* e, effective(key, SettingType::type_enum)); \
    const Value& v = *top(*e);                                    \
    MOSS_RETURN_IF_ERROR(check(*e, v));                                      \
    return parser(v.text);                                                   \
  }
MOSS_CONFIG_GETTER(get_int, kInt, int64_t, parse_config_int)
MOSS_CONFIG_GETTER(get_bool, kBool, bool, parse_config_bool)
MOSS_CONFIG_GETTER(get_duration, kDuration, std::chrono::milliseconds, parse_duration)
MOSS_CONFIG_GETTER(get_bytes, kBytes, uint64_t, parse_byte_size)
#undef MOSS_CONFIG_GETTER

Result<int64_t> Config::get_int_in(std::string_view key, int64_t lo, int64_t hi) const {
  MOSS_ASSIGN_OR_RETURN(int64_t v, get_int(key));
  if (v < lo || v > hi) {
    return invalid_argument("setting {}: {}: {} is not in [{}, {}]", key, *source_of(key), v, lo, hi);
  }
  return v;
}

Result<std::chrono::milliseconds> Config::get_duration_in(std::string_view key, std::chrono::milliseconds lo,
                                                          std::chrono::milliseconds hi) const {
  MOSS_ASSIGN_OR_RETURN(std::chrono::milliseconds v, get_duration(key));
  if (v < lo || v > hi) {
    return invalid_argument("setting {}: {}: {} is not in [{}, {}]", key, *source_of(key),
                            format_duration(v), format_duration(lo), format_duration(hi));
  }
  return v;
}

Result<HostPort> Config::get_host_port(std::string_view key) const {
  MOSS_ASSIGN_OR_RETURN(std::string text, get_string(key));
  auto parsed = parse_host_port(text);
  if (!parsed.ok()) return parsed.status().with_context(fmt::format("setting {}: {}", key, *source_of(key)));
  return parsed;
}

Result<std::string> Config::source_of(std::string_view key) const {
  const Entry* e = find(key);
  if (e == nullptr) return not_found("config: setting '{}' is not declared", key);
  const Value* v = top(*e);
  return v ? v->origin : std::string("unset");
}

Status Config::validate() const {
  for (const auto& [key, e] : entries_) {
    MOSS_ASSIGN_OR_RETURN(const Entry* found, effective(key, specs_[e.spec_index].type));
    MOSS_RETURN_IF_ERROR(check(*found, *top(*found)));
  }
  return Status::Ok();
}

std::string Config::dump() const {
  size_t width = 0;
  for (const auto& s : specs_) width = std::max(width, s.key.size());
  std::string out;
  for (const auto& [key, e] : entries_) {
    const SettingSpec& spec = specs_[e.spec_index];
    const Value* v = top(e);
    std::string value, origin = v ? v->origin : "unset";
    if (v == nullptr) {
      value = "<unset, required>";
    } else if (spec.secret) {
      value = kMasked;
    } else {
      value = spec.type == SettingType::kString ? fmt::format("\"{}\"", v->text) : v->text;
    }
    out += fmt::format("{:<{}} = {}  ({})\n", key, width, value, origin);
  }
  return out;
}

}  // namespace moss
