// FnPacker's side of the inference wires (docs/worker-api.md): reading a worker's answer, local
// (HTTP, either encoding) or from OpenWhisk (an action result, JSON only), into the one typed
// result (protocol/infer_result.h), and the JSON request OpenWhisk's /run needs for a binary
// envelope. A result travels through the pool in the encoding the worker answered in; only a
// JSON-only hop (OpenWhisk) makes the API convert it for a binary client. No keys are involved:
// an envelope's framing is public (protocol/envelope_frame.h).
#pragma once

#include "common/status.h"
#include "net/http_message.h"
#include "protocol/infer_result.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace moss::packer {

// A worker's HTTP answer to /v1/infer: a 200 result or a sealed error (its status and envelope)
// in either encoding. Any other non-200 answer is the Status it describes; a malformed 200 answer
// is internal.
Result<protocol::InferResult> result_from_worker_answer(const net::Response& response);

// The worker's /run answers a sealed error as {"error":{"code","category","message","envelope"}}
// (OpenWhisk keeps only a result's `error` field): an OpenWhisk action result of that shape -> the
// sealed error, or nullopt when it is not one.
std::optional<protocol::InferResult> sealed_error_from_action_result(const nlohmann::ordered_json& result);

// The JSON C3 request for a binary request envelope (OpenWhisk /run takes JSON only).
Result<std::string> json_request_from_binary(std::string_view envelope);

}  // namespace moss::packer
