#include "common/reply_error.h"

#include "common/safetensors.h"

namespace moss {

namespace {

// Messages may quote request bytes that are not UTF-8 (a tensor name), which safetensors refuses:
// printable ASCII passes, anything else becomes '?'.
std::string printable(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return out;
}

}  // namespace

Result<std::vector<uint8_t>> write_reply_error(const ReplyError& error) {
  TensorBundle b;
  b.mutable_metadata()[kReplyErrorCategoryKey] = printable(error.category);
  b.mutable_metadata()[kReplyErrorCodeKey] = printable(error.code);
  b.mutable_metadata()[kReplyErrorMessageKey] = printable(error.message);
  return write_safetensors(b);
}

Result<std::optional<ReplyError>> reply_error_of(const TensorBundle& plaintext) {
  const auto& meta = plaintext.metadata();
  auto category = meta.find(kReplyErrorCategoryKey);
  if (category == meta.end()) return std::optional<ReplyError>();
  auto code = meta.find(kReplyErrorCodeKey);
  auto message = meta.find(kReplyErrorMessageKey);
  if (!plaintext.empty() || code == meta.end() || message == meta.end()) {
    return invalid_argument("a response marked as an error must carry code and message and no tensors");
  }
  return std::optional<ReplyError>(ReplyError{category->second, code->second, message->second});
}

}  // namespace moss
