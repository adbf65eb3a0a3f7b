#include "common/strict_json.h"

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

}  // namespace

Result<nlohmann::ordered_json> parse_json_strict(std::string_view text, std::string_view what,
                                                 int max_depth) {
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
  if (!duplicate.empty()) return invalid_argument("{}: duplicate key '{}'", what, duplicate);
  return json;
}

}  // namespace moss
