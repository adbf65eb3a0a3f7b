// JSON error responses: `{"error":{"code":"not-found","reason":"unknown-model","message":"model x/y"}}`.
//
// Every MOSS service answers errors in this one shape, rendered here and only here, with the HTTP
// status mapped from the moss::ErrorCode, so clients can turn a response back into the same
// Status (code, reason, message). `reason` is present when the Status has one.
#pragma once

#include "common/status.h"
#include "net/http_message.h"

namespace moss::net {

// 400 invalid-argument/out-of-range, 401 unauthenticated, 403 permission-denied, 404 not-found,
// 409 already-exists/failed-precondition, 429 resource-exhausted, 501 unimplemented,
// 503 unavailable, 504 deadline-exceeded, 500 otherwise. (413 is chosen by the caller or the
// server's body limit: pass it as `http_status`.)
int http_status_for(ErrorCode code);

// The inverse, for statuses that carry no JSON error body (e.g. a proxy's 502).
ErrorCode error_code_for_http_status(int status);

// What of a failure its caller may see. Internal and data-loss failures show no detail (their
// text is about this service's insides: the service logs it): their code, reason "internal",
// message "internal error". Every other failure shows its code, reason and message.
struct PublicError {
  std::string_view code;  // error_code_name(...)
  std::string_view reason;
  std::string_view message;
};
// Precondition: !status.ok(). The views borrow from `status` (and static text).
PublicError public_error(const Status& status);

// Precondition: !status.ok(). `http_status` 0 means http_status_for(status.code()). The body is
// public_error(status).
Response error_response(const Status& status, int http_status = 0);
Response error_response(int http_status, std::string_view code, std::string_view message);

// OK for 2xx; otherwise the Status carried in the JSON error body (with its reason when that is a
// plain [a-z0-9-] word of at most 64 characters), or one derived from the HTTP status when the body
// is not a MOSS error (message capped, never the whole body).
Status status_from_response(const Response& response);

}  // namespace moss::net
