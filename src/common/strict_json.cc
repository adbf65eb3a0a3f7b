#include "common/strict_json.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace moss {
namespace {

// Nesting depth counted before parsing, so that a hostile "[[[[..." never reaches the parser.
int max_nesting(std::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return max_depth;
}

// Fast path for the common shape of hot-path documents (the request envelope and the bodies that
// carry it): objects whose values are strings, small integers or such objects. nlohmann's
// callback parser walks megabytes of base64 a byte at a time with a callback; this one finds
// string ends with memchr. It accepts a strict subset of what the full parser accepts and gives
// the same value; on anything else (arrays, true/false/null, non-ASCII, \u escapes, floats, duplicate keys,
// any syntax error) it returns nullopt and the full parser decides, with its precise errors.
class SimpleObjectParser {
 public:
  explicit SimpleObjectParser(std::string_view text) : p_(text.data()), end_(p_ + text.size()) {}

  std::optional<nlohmann::ordered_json> parse(int max_depth) {
    skip_ws();
    auto out = parse_object(max_depth);
    if (!out) return std::nullopt;
    skip_ws();
    if (p_ != end_) return std::nullopt;
    return out;
  }

 private:
  // An object (nested objects allowed up to `depth` levels), at '{'.
  std::optional<nlohmann::ordered_json> parse_object(int depth) {
    if (depth < 1 || !eat('{')) return std::nullopt;
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    skip_ws();
    if (eat('}')) return out;
    std::string key;
    for (;;) {
      if (!eat('"') || !read_string(key)) return std::nullopt;
      if (out.contains(key)) return std::nullopt;
      skip_ws();
      if (!eat(':')) return std::nullopt;
      skip_ws();
      if (p_ == end_) return std::nullopt;
      if (*p_ == '"') {
        ++p_;
        std::string value;
        if (!read_string(value)) return std::nullopt;
        out[key] = std::move(value);
      } else if (*p_ == '{') {
        auto inner = parse_object(depth - 1);
        if (!inner) return std::nullopt;
        out[key] = std::move(*inner);
      } else {
        auto number = read_integer();
        if (!number) return std::nullopt;
        // As nlohmann's parser types them: non-negative -> unsigned, negative -> signed.
        if (*number >= 0) out[key] = static_cast<uint64_t>(*number);
        else out[key] = *number;
      }
      skip_ws();
      if (eat('}')) return out;
      if (!eat(',')) return std::nullopt;
      skip_ws();
    }
  }
  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool eat(char c) {
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  // After the opening quote. Plain ASCII with the short escapes only.
  bool read_string(std::string& out) {
    out.clear();
    for (;;) {
      const char* quote = static_cast<const char*>(std::memchr(p_, '"', end_ - p_));
      if (!quote) return false;
      const char* backslash = static_cast<const char*>(std::memchr(p_, '\\', quote - p_));
      const char* stop = backslash ? backslash : quote;
      for (const char* c = p_; c < stop; ++c) {
        const auto u = static_cast<unsigned char>(*c);
        if (u < 0x20 || u >= 0x80) return false;
      }
      out.append(p_, stop);
      p_ = stop + 1;
      if (!backslash) return true;
      if (p_ == end_) return false;
      switch (*p_++) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        default: return false;  // \u and invalid escapes: the full parser
      }
    }
  }
  // JSON integer without fraction or exponent, at most 18 digits (fits int64 exactly).
  std::optional<int64_t> read_integer() {
    const bool negative = eat('-');
    const char* start = p_;
    int64_t v = 0;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9' && p_ - start < 18) v = v * 10 + (*p_++ - '0');
    const size_t digits = p_ - start;
    if (digits == 0 || (digits > 1 && *start == '0') || (negative && v == 0)) return std::nullopt;
    if (p_ < end_ && ((*p_ >= '0' && *p_ <= '9') || *p_ == '.' || *p_ == 'e' || *p_ == 'E')) {
      return std::nullopt;
    }
    return negative ? -v : v;
  }

  const char* p_;
  const char* end_;
};

}  // namespace

Result<nlohmann::ordered_json> parse_json_strict(std::string_view text, std::string_view what,
                                                 int max_depth) {
  if (auto flat = SimpleObjectParser(text).parse(max_depth)) return std::move(*flat);
  if (max_nesting(text) > max_depth) {
    return invalid_argument("{}: JSON nested deeper than {} levels", what, max_depth);
  }
  // One key set per open object; the callback sees keys in document order.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int /*depth*/, nlohmann::ordered_json::parse_event_t event,
                      nlohmann::ordered_json& parsed) {
    using E = nlohmann::ordered_json::parse_event_t;
    if (event == E::object_start) {
      open_objects.emplace_back();
    } else if (event == E::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == E::key && !open_objects.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  nlohmann::ordered_json json;
  try {
    json = nlohmann::ordered_json::parse(text.begin(), text.end(), callback);
  } catch (const nlohmann::ordered_json::parse_error& e) {
    // Only the position: the parser's own message quotes input, which may be secret.
    return invalid_argument("{}: malformed JSON near byte {}", what, e.byte);
  } catch (const nlohmann::ordered_json::exception& e) {
    // E.g. out_of_range for a number too large for a double ("1e99999").
    return invalid_argument("{}: unrepresentable JSON value (error {})", what, e.id);
  }
  if (!duplicate.empty()) return invalid_argument("{}: duplicate key {}", what, quote_input_name(duplicate));
  return json;
}

Status check_object_keys(const nlohmann::ordered_json& j,
                         std::initializer_list<std::string_view> required,
                         std::initializer_list<std::string_view> optional) {
  if (!j.is_object()) return invalid_argument("expected a JSON object");
  for (const auto& [key, value] : j.items()) {
    const bool known = std::find(required.begin(), required.end(), key) != required.end() ||
                       std::find(optional.begin(), optional.end(), key) != optional.end();
    if (!known) return invalid_argument("unknown field {}", quote_input_name(key));
  }
  for (std::string_view key : required) {
    if (!j.contains(key)) return invalid_argument("field '{}' is required", key);
  }
  return Status::Ok();
}

Result<nlohmann::ordered_json> parse_json_object(std::string_view text, std::string_view what,
                                                 std::initializer_list<std::string_view> required,
                                                 std::initializer_list<std::string_view> optional,
                                                 int max_depth) {
  MOSS_ASSIGN_OR_RETURN(auto j, parse_json_strict(text, what, max_depth));
  MOSS_RETURN_IF_ERROR(check_object_keys(j, required, optional).with_context(what));
  return j;
}

namespace {

// The field's value, or an error saying it is required. `j` must be an object.
Result<const nlohmann::ordered_json*> find_field(const nlohmann::ordered_json& j,
                                                 std::string_view name) {
  if (!j.is_object()) return invalid_argument("expected a JSON object with field '{}'", name);
  auto it = j.find(name);
  if (it == j.end()) return invalid_argument("field '{}' is required", name);
  return &*it;
}

}  // namespace

Result<std::string> string_field(const nlohmann::ordered_json& j, std::string_view name,
                                 size_t max_bytes) {
  MOSS_ASSIGN_OR_RETURN(const auto* v, find_field(j, name));
  if (!v->is_string()) return invalid_argument("field '{}' must be a string", name);
  const auto& s = v->get_ref<const std::string&>();
  if (s.size() > max_bytes) {
    return invalid_argument("field '{}' is longer than {} bytes", name, max_bytes);
  }
  return s;
}

Result<std::string> string_field_or(const nlohmann::ordered_json& j, std::string_view name,
                                    size_t max_bytes, std::string fallback) {
  if (j.is_object() && !j.contains(name)) return fallback;
  return string_field(j, name, max_bytes);
}

Result<int64_t> integer_field(const nlohmann::ordered_json& j, std::string_view name, int64_t min,
                              int64_t max) {
  MOSS_ASSIGN_OR_RETURN(const auto* v, find_field(j, name));
  // nlohmann types a non-negative literal as unsigned; one above INT64_MAX must not wrap.
  bool in_range = false;
  int64_t n = 0;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    in_range = max >= 0 && u <= static_cast<uint64_t>(max);
    n = in_range ? static_cast<int64_t>(u) : 0;
    in_range = in_range && n >= min;
  } else if (v->is_number_integer()) {
    n = v->get<int64_t>();
    in_range = n >= min && n <= max;
  }
  if (!in_range) return invalid_argument("field '{}' must be an integer in [{}, {}]", name, min, max);
  return n;
}

Result<int64_t> integer_field_or(const nlohmann::ordered_json& j, std::string_view name,
                                 int64_t min, int64_t max, int64_t fallback) {
  if (j.is_object() && !j.contains(name)) return fallback;
  return integer_field(j, name, min, max);
}

Result<bool> bool_field(const nlohmann::ordered_json& j, std::string_view name) {
  MOSS_ASSIGN_OR_RETURN(const auto* v, find_field(j, name));
  if (!v->is_boolean()) return invalid_argument("field '{}' must be a boolean", name);
  return v->get<bool>();
}

Result<bool> bool_field_or(const nlohmann::ordered_json& j, std::string_view name, bool fallback) {
  if (j.is_object() && !j.contains(name)) return fallback;
  return bool_field(j, name);
}

Result<const nlohmann::ordered_json*> array_field(const nlohmann::ordered_json& j,
                                                  std::string_view name, size_t max_items) {
  MOSS_ASSIGN_OR_RETURN(const auto* v, find_field(j, name));
  if (!v->is_array()) return invalid_argument("field '{}' must be an array", name);
  if (v->size() > max_items) {
    return invalid_argument("field '{}' has more than {} items", name, max_items);
  }
  return v;
}

Result<const nlohmann::ordered_json*> object_field(const nlohmann::ordered_json& j,
                                                   std::string_view name, size_t max_keys) {
  MOSS_ASSIGN_OR_RETURN(const auto* v, find_field(j, name));
  if (!v->is_object()) return invalid_argument("field '{}' must be an object", name);
  if (v->size() > max_keys) {
    return invalid_argument("field '{}' has more than {} keys", name, max_keys);
  }
  return v;
}

std::string quote_input_name(std::string_view name) {
  const bool plain = !name.empty() && name.size() <= 64 &&
                     std::all_of(name.begin(), name.end(), [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                              c == '_' || c == '.' || c == '-';
                     });
  if (plain) return fmt::format("'{}'", name);  // not "'" + string: GCC 12 false -Wrestrict
  return fmt::format("(a name of {} bytes)", name.size());
}

}  // namespace moss
