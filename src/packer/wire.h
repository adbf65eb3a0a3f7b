// The two wires of an inference request and its result (docs/worker-api.md): the JSON C3 result
// object, and the binary envelope body with run, timing, instance (and FnPacker's annotation) in
// headers. FnPacker keeps results as the JSON object internally and converts at the edges: a
// local worker is asked in binary when the client sent binary, OpenWhisk's /run only takes JSON.
// No keys are involved: an envelope's framing is public (crypto::convert_envelope).
#pragma once

#include "common/status.h"
#include "net/http_message.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace moss::packer {

// A worker's 200 answer to a binary request -> the JSON result text
// {"envelope": <JSON form>, "run", "timing_ms", "instance"}.
Result<std::string> json_result_from_binary(const net::Response& response);

// The JSON result (with FnPacker's "packer" object) -> a 200 binary answer for the client (a
// sealed error keeps its status, its category in a header).
Result<net::Response> binary_answer_from_json(const nlohmann::json& result);

// An opened request that failed (docs/worker-api.md, "Errors") is answered by the worker with a
// non-200 status and the sealed error envelope: FnPacker passes it on unchanged, status and body.
// Internally it is the JSON error result {"error":{"code","category","message"},"envelope"}.
// The worker's non-200 answer -> that JSON text, or nullopt when it is not a sealed error.
std::optional<std::string> sealed_error_result(const net::Response& response);
// The worker's /run answers a sealed error as {"error":{"code","category","message","envelope"}}
// (OpenWhisk keeps only a result's `error` field): an OpenWhisk action result of that shape ->
// the same JSON error result, or nullopt when it is not one.
std::optional<std::string> sealed_error_from_action_result(const nlohmann::json& result);
// The HTTP status a JSON result text is answered with: 200, or the sealed error's.
int result_http_status(std::string_view result_text);

// The JSON C3 request for a binary request envelope (OpenWhisk /run takes JSON only).
Result<std::string> json_request_from_binary(std::string_view envelope);

}  // namespace moss::packer
