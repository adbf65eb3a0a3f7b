// The error form of a response envelope's plaintext (docs/formats.md, "Response plaintext").
//
// Once a worker has opened a request envelope, every answer to it is sealed for the user, errors
// included: an error's detail may quote request data (an index value, a tensor name), so it must
// never travel or be logged in cleartext. The result form is the safetensors bundle of outputs
// (unchanged); the error form is a safetensors bundle with no tensors whose `__metadata__` holds
// `moss.error.category`, `moss.error.code` and `moss.error.message`. The worker writes it,
// `moss infer` reads it.
#pragma once

#include "common/status.h"
#include "common/tensor_bundle.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moss {

inline constexpr char kReplyErrorCategoryKey[] = "moss.error.category";
inline constexpr char kReplyErrorCodeKey[] = "moss.error.code";
inline constexpr char kReplyErrorMessageKey[] = "moss.error.message";

struct ReplyError {
  std::string category;  // fixed: the same word the cleartext HTTP answer carries
  std::string code;      // error_code_name() of the failure
  std::string message;   // the detail, for the user only
};

// The error-form plaintext (safetensors bytes).
Result<std::vector<uint8_t>> write_reply_error(const ReplyError& error);

// The error a response plaintext carries, nullopt when it is a result. A bundle with the category
// key but tensors too, or without code and message, is malformed (invalid-argument).
Result<std::optional<ReplyError>> reply_error_of(const TensorBundle& plaintext);

}  // namespace moss
