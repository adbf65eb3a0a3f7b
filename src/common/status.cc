#include "common/status.h"

#include <cstdio>
#include <cstdlib>

namespace moss {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kInvalidArgument: return "invalid-argument";
    case ErrorCode::kNotFound: return "not-found";
    case ErrorCode::kAlreadyExists: return "already-exists";
    case ErrorCode::kPermissionDenied: return "permission-denied";
    case ErrorCode::kUnauthenticated: return "unauthenticated";
    case ErrorCode::kFailedPrecondition: return "failed-precondition";
    case ErrorCode::kOutOfRange: return "out-of-range";
    case ErrorCode::kResourceExhausted: return "resource-exhausted";
    case ErrorCode::kUnimplemented: return "unimplemented";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kDeadlineExceeded: return "deadline-exceeded";
    case ErrorCode::kDataLoss: return "data-loss";
    case ErrorCode::kInternal: return "internal";
  }
  return "unknown";
}

ErrorCode error_code_from_name(std::string_view name) {
  for (int i = 1; i <= static_cast<int>(ErrorCode::kInternal); ++i) {
    auto code = static_cast<ErrorCode>(i);
    if (error_code_name(code) == name) return code;
  }
  return ErrorCode::kInternal;
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  return fmt::format("{}: {}", error_code_name(code_), message_);
}

Status Status::with_context(std::string_view context) const& {
  return Status(*this).with_context(context);
}

Status Status::with_context(std::string_view context) && {
  if (ok()) return std::move(*this);
  message_ = fmt::format("{}: {}", context, message_);
  return std::move(*this);
}

Status Status::with_reason(std::string reason) && {
  if (!ok()) reason_ = std::move(reason);
  return std::move(*this);
}

Status Status::with_request_not_sent() && {
  if (!ok()) request_not_sent_ = true;
  return std::move(*this);
}

Status refuse(ErrorCode code, std::string_view reason, std::string_view message) {
  return Status(code, fmt::format("{}: {}", reason, message), std::string(reason));
}

void Status::check() const {
  if (ok()) return;
  std::fprintf(stderr, "fatal: %s\n", to_string().c_str());
  std::abort();
}

}  // namespace moss
