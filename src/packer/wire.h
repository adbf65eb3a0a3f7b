// The two wires of an inference request and its result (docs/worker-api.md): the JSON C3 result
// object, and the binary envelope body with run, timing, instance (and FnPacker's annotation) in
// headers. FnPacker keeps results as the JSON object internally and converts at the edges: a
// local worker is asked in binary when the client sent binary, OpenWhisk's /run only takes JSON.
// No keys are involved: an envelope's framing is public (crypto::convert_envelope).
#pragma once

#include "common/status.h"
#include "net/http_message.h"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace moss::packer {

// A worker's 200 answer to a binary request -> the JSON result text
// {"envelope": <JSON form>, "run", "timing_ms", "instance"}.
Result<std::string> json_result_from_binary(const net::Response& response);

// The JSON result (with FnPacker's "packer" object) -> a 200 binary answer for the client.
Result<net::Response> binary_answer_from_json(const nlohmann::json& result);

// The JSON C3 request for a binary request envelope (OpenWhisk /run takes JSON only).
Result<std::string> json_request_from_binary(std::string_view envelope);

}  // namespace moss::packer
