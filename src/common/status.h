// Status and Result<T>: errors as values (style convention 2).
//
// A function that can fail returns Status or Result<T>. Both are [[nodiscard]]. A Status carries a
// stable code (mapped to HTTP statuses and CLI exit codes at the edges), a one-line message meant
// for the person who has to act on it, and optionally a reason that programs test ("no-grant",
// "etcd-revision-compacted": stable, [a-z0-9-]) and a hint that a request it reports was never
// sent (so resending it cannot do anything twice). Programs test the code, the reason and the
// hint, never the message text. Messages never contain secret material.
#pragma once

#include <fmt/format.h>

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace moss {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,     // malformed input: a bad file, a bad request, a bad flag
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,    // authenticated but not allowed
  kUnauthenticated,     // signature, MAC or attestation check failed
  kFailedPrecondition,  // the operation is not valid in the current state
  kOutOfRange,
  kResourceExhausted,   // a size limit or rate limit was hit
  kUnimplemented,       // a valid input we do not support (an operator, a quote version)
  kUnavailable,         // a peer could not be reached; retrying may help
  kDeadlineExceeded,
  kDataLoss,            // stored data is corrupt or truncated
  kInternal,            // a bug or an environment failure
};

// Short stable name, e.g. "invalid-argument"; used in JSON error bodies and logs.
std::string_view error_code_name(ErrorCode code);
// The inverse; kInternal for a name it does not know (an error from elsewhere stays an error).
ErrorCode error_code_from_name(std::string_view name);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  Status(ErrorCode code, std::string message, std::string reason)
      : code_(code), message_(std::move(message)), reason_(std::move(reason)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "" when the failure has no more specific reason than its code.
  const std::string& reason() const { return reason_; }
  // True only when the operation's request certainly never left this process (e.g. the
  // connection was never made); false means it may have been sent.
  bool request_not_sent() const { return request_not_sent_; }

  // The same failure with a reason / with the not-sent hint (no effect on Ok).
  Status with_reason(std::string reason) &&;
  Status with_request_not_sent() &&;

  // "invalid-argument: <message>"
  std::string to_string() const;

  // Prefixes the message with where the failure happened: "reading model.moss: <message>".
  // Reason and hint are kept.
  Status with_context(std::string_view context) const&;
  Status with_context(std::string_view context) &&;

  // Aborts the process with the message; for failures that are bugs, never for untrusted input.
  void check() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
  std::string reason_;
  bool request_not_sent_ = false;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                                 // NOLINT: implicit
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const& {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  Status status() && { return ok() ? Status() : std::get<Status>(std::move(v_)); }

  // Precondition: ok(). Reading the value of an error is a bug.
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

  // The value, or aborts with the error message (tools and tests only).
  T value_or_die() && {
    if (!ok()) std::get<Status>(v_).check();
    return std::get<T>(std::move(v_));
  }

 private:
  std::variant<T, Status> v_;
};

// Constructors that format their message with fmt: invalid_argument("bad dim {}", d).
#define MOSS_DEFINE_ERROR_FN(fn, code)                                        \
  template <typename... Args>                                                 \
  Status fn(fmt::format_string<Args...> f, Args&&... args) {                  \
    return Status(ErrorCode::code, fmt::format(f, std::forward<Args>(args)...)); \
  }
MOSS_DEFINE_ERROR_FN(invalid_argument, kInvalidArgument)
MOSS_DEFINE_ERROR_FN(not_found, kNotFound)
MOSS_DEFINE_ERROR_FN(already_exists, kAlreadyExists)
MOSS_DEFINE_ERROR_FN(permission_denied, kPermissionDenied)
MOSS_DEFINE_ERROR_FN(unauthenticated, kUnauthenticated)
MOSS_DEFINE_ERROR_FN(failed_precondition, kFailedPrecondition)
MOSS_DEFINE_ERROR_FN(out_of_range, kOutOfRange)
MOSS_DEFINE_ERROR_FN(resource_exhausted, kResourceExhausted)
MOSS_DEFINE_ERROR_FN(unimplemented, kUnimplemented)
MOSS_DEFINE_ERROR_FN(unavailable, kUnavailable)
MOSS_DEFINE_ERROR_FN(deadline_exceeded, kDeadlineExceeded)
MOSS_DEFINE_ERROR_FN(data_loss, kDataLoss)
MOSS_DEFINE_ERROR_FN(internal_error, kInternal)
#undef MOSS_DEFINE_ERROR_FN

// A refusal with a stable reason: Status(code, "<reason>: <message>", reason). The message starts
// with the reason for the person reading it; programs read reason().
Status refuse(ErrorCode code, std::string_view reason, std::string_view message);

}  // namespace moss

#define MOSS_CONCAT_INNER(a, b) a##b
#define MOSS_CONCAT(a, b) MOSS_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function when `expr` (a Status) is not ok.
#define MOSS_RETURN_IF_ERROR(expr)                  \
  do {                                              \
    ::moss::Status moss_status_ = (expr);           \
    if (!moss_status_.ok()) return moss_status_;    \
  } while (0)

// `MOSS_ASSIGN_OR_RETURN(auto x, f());` declares x from a Result or returns its error.
#define MOSS_ASSIGN_OR_RETURN(lhs, expr) \
  MOSS_ASSIGN_OR_RETURN_IMPL(MOSS_CONCAT(moss_result_, __LINE__), lhs, expr)
#define MOSS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return std::move(tmp).status();   \
  lhs = std::move(tmp).value()
