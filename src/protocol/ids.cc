#include "protocol/ids.h"

namespace moss::protocol {
namespace {
bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}
}  // namespace

Status validate_model_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxModelIdBytes) {
    return invalid_argument("model id must be 1..{} bytes, got {}", kMaxModelIdBytes, id.size());
  }
  size_t start = 0;
  while (start <= id.size()) {
    size_t end = id.find('/', start);
    if (end == std::string_view::npos) end = id.size();
    std::string_view seg = id.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") {
      return invalid_argument("model id has an empty, '.' or '..' segment");
    }
    for (char c : seg) {
      if (!is_word_char(c)) {
        return invalid_argument("model id may contain only [A-Za-z0-9._-] and '/'");
      }
    }
    start = end + 1;
  }
  return Status::Ok();
}

Status validate_label(std::string_view value, std::string_view what) {
  if (value.empty() || value.size() > kMaxLabelBytes) {
    return invalid_argument("{} must be 1..{} bytes, got {}", what, kMaxLabelBytes, value.size());
  }
  for (char c : value) {
    if (!is_word_char(c) && c != ':') {
      return invalid_argument("{} may contain only [A-Za-z0-9._:-]", what);
    }
  }
  return Status::Ok();
}

}  // namespace moss::protocol
