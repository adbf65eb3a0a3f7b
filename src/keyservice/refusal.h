// Refusals with a stable reason (docs/keyservice-api.md "Errors"): a Status whose message starts
// with "<reason>: ", and the JSON error that carries the reason as its own field.
// Stateless: thread-safe.
#pragma once

#include "common/status.h"
#include "net/http_message.h"

#include <string>
#include <string_view>

namespace moss::keyservice {

// Status(code, "<reason>: <message>").
Status refuse(ErrorCode code, std::string_view reason, std::string_view message);

// The reason of a refusal ("" when the message has no "<reason>: " prefix of [a-z-]).
std::string_view reason_of(const Status& status);

// {"error":{"code","reason","message"}} with the HTTP status for the code (or `http_status`).
net::Response refusal_response(const Status& status, int http_status = 0);

}  // namespace moss::keyservice
