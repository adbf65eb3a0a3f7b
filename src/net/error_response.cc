#include "net/error_response.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace moss::net {

int http_status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return 200;
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kOutOfRange: return 400;
    case ErrorCode::kUnauthenticated: return 401;
    case ErrorCode::kPermissionDenied: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kFailedPrecondition: return 409;
    case ErrorCode::kResourceExhausted: return 429;
    case ErrorCode::kUnimplemented: return 501;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kDeadlineExceeded: return 504;
    case ErrorCode::kDataLoss:
    case ErrorCode::kInternal: return 500;
  }
  return 500;
}

ErrorCode error_code_for_http_status(int status) {
  switch (status) {
    case 400: return ErrorCode::kInvalidArgument;
    case 401: return ErrorCode::kUnauthenticated;
    case 403: return ErrorCode::kPermissionDenied;
    case 404: return ErrorCode::kNotFound;
    case 409: return ErrorCode::kAlreadyExists;
    case 413:
    case 429:
    case 431: return ErrorCode::kResourceExhausted;
    case 501: return ErrorCode::kUnimplemented;
    case 502:
    case 503: return ErrorCode::kUnavailable;
    case 504: return ErrorCode::kDeadlineExceeded;
    default: return status >= 200 && status < 300 ? ErrorCode::kOk : ErrorCode::kInternal;
  }
}

namespace {

Response render(int http_status, std::string_view code, std::string_view reason,
                std::string_view message) {
  nlohmann::ordered_json e = {{"code", code}};  // ordered: code, reason, message as documented
  if (!reason.empty()) e["reason"] = reason;
  e["message"] = message;
  nlohmann::ordered_json j = {{"error", std::move(e)}};
  // Replace invalid UTF-8 instead of throwing: messages may quote untrusted input.
  return Response::json(http_status,
                        j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

bool is_reason_word(std::string_view r) {
  return !r.empty() && r.size() <= 64 && std::all_of(r.begin(), r.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

}  // namespace

Response error_response(int http_status, std::string_view code, std::string_view message) {
  return render(http_status, code, "", message);
}

PublicError public_error(const Status& status) {
  if (status.code() == ErrorCode::kInternal || status.code() == ErrorCode::kDataLoss) {
    return {error_code_name(status.code()), "internal", "internal error"};
  }
  return {error_code_name(status.code()), status.reason(), status.message()};
}

Response error_response(const Status& status, int http_status) {
  if (http_status == 0) http_status = http_status_for(status.code());
  const PublicError e = public_error(status);
  return render(http_status, e.code, e.reason, e.message);
}

Status status_from_response(const Response& response) {
  if (response.status >= 200 && response.status < 300) return Status::Ok();
  auto parsed = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_object()) {
    const auto& e = parsed["error"];
    std::string code = e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>() : "";
    std::string message =
        e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : "";
    std::string reason = e.contains("reason") && e["reason"].is_string() ? e["reason"].get<std::string>() : "";
    ErrorCode ec = code.empty() ? error_code_for_http_status(response.status)
                                : error_code_from_name(code);
    if (ec == ErrorCode::kOk) ec = ErrorCode::kInternal;
    return Status(ec, message.empty() ? fmt::format("HTTP {}", response.status) : message,
                  is_reason_word(reason) ? reason : "");
  }
  ErrorCode ec = error_code_for_http_status(response.status);
  if (ec == ErrorCode::kOk) ec = ErrorCode::kInternal;
  constexpr size_t kMaxQuoted = 200;
  std::string excerpt = response.body.substr(0, kMaxQuoted);
  return Status(ec, fmt::format("HTTP {}{}{}", response.status, excerpt.empty() ? "" : ": ", excerpt));
}

}  // namespace moss::net
