#include "packer/wire.h"

#include "net/error_response.h"
#include "protocol/envelope_frame.h"
#include "protocol/infer_request.h"

namespace moss::packer {

Result<protocol::InferResult> result_from_worker_answer(const net::Response& response) {
  Result<protocol::InferResult> result = protocol::InferResult::from_http(
      response.headers.get_or("Content-Type", ""), response.body,
      [&](std::string_view name) { return response.headers.get(name); },
      response.status == 200 ? std::nullopt
                             : std::optional<ErrorCode>(net::error_code_for_http_status(response.status)));
  if (response.status != 200) {
    // A sealed error is the worker's answer to the user: passed on, not turned into ours.
    if (result.ok() && result->error) return result;
    return net::status_from_response(response);
  }
  if (!result.ok()) return internal_error("the worker's answer is malformed: {}", result.status().message());
  if (result->error) return internal_error("the worker answered a sealed error with HTTP 200");
  return result;
}

std::optional<protocol::InferResult> sealed_error_from_action_result(const nlohmann::ordered_json& result) {
  if (!result.is_object()) return std::nullopt;
  auto err = result.find("error");
  if (err == result.end() || !err->is_object() || !err->contains("envelope") ||
      !(*err)["envelope"].is_string()) {
    return std::nullopt;
  }
  nlohmann::ordered_json error = *err;
  nlohmann::ordered_json body;
  body["envelope"] = error["envelope"];
  error.erase("envelope");
  body["error"] = std::move(error);
  auto parsed = protocol::InferResult::from_json(body);
  if (!parsed.ok() || !parsed->error) return std::nullopt;
  return std::move(parsed).value();
}

Result<std::string> json_request_from_binary(std::string_view envelope) {
  MOSS_ASSIGN_OR_RETURN(protocol::EnvelopeFrame frame, protocol::EnvelopeFrame::parse(envelope));
  return protocol::InferRequest{frame.header().model_id, frame.encode(protocol::EnvelopeEncoding::kJson),
                                std::nullopt}
      .to_json();
}

}  // namespace moss::packer
