#include "packer/wire.h"

#include "crypto/envelope.h"
#include "net/error_response.h"
#include "worker/worker_api.h"

namespace moss::packer {

using json = nlohmann::json;

namespace {

json header_json(const net::Response& r, std::string_view name) {
  json j = json::parse(r.headers.get_or(name, ""), nullptr, false);
  return j.is_discarded() ? json() : j;
}

}  // namespace

Result<std::string> json_result_from_binary(const net::Response& response) {
  if (response.headers.get_or("Content-Type", "") != crypto::kEnvelopeMediaType) {
    return internal_error("the worker answered a binary request with {}",
                          response.headers.get_or("Content-Type", "no content type"));
  }
  MOSS_ASSIGN_OR_RETURN(std::string envelope,
                        crypto::convert_envelope(response.body, crypto::EnvelopeEncoding::kJson));
  json result;
  result["envelope"] = std::move(envelope);
  result["run"] = std::string(response.headers.get_or(worker::kRunHeader, ""));
  result["timing_ms"] = header_json(response, worker::kTimingHeader);
  result["instance"] = header_json(response, worker::kInstanceHeader);
  return result.dump();
}

Result<net::Response> binary_answer_from_json(const json& result) {
  auto e = result.find("envelope");
  if (e == result.end() || !e->is_string()) return internal_error("the worker's result has no envelope");
  net::Response r;
  MOSS_ASSIGN_OR_RETURN(r.body, crypto::convert_envelope(e->get_ref<const std::string&>(),
                                                         crypto::EnvelopeEncoding::kBinary));
  r.status = 200;
  r.headers.set("Content-Type", crypto::kEnvelopeMediaType);
  if (auto err = result.find("error"); err != result.end()) {
    if (!err->is_object() || !err->contains("code") || !(*err)["code"].is_string() ||
        !err->contains("category") || !(*err)["category"].is_string()) {
      return internal_error("the worker's error result is malformed");
    }
    r.status = net::http_status_for(error_code_from_name((*err)["code"].get<std::string>()));
    r.headers.set(worker::kErrorCategoryHeader, (*err)["category"].get<std::string>());
  }
  if (auto run = result.find("run"); run != result.end() && run->is_string()) {
    r.headers.set(worker::kRunHeader, run->get_ref<const std::string&>());
  }
  for (const auto& [field, header] : {std::pair{"timing_ms", worker::kTimingHeader},
                                      std::pair{"packer", worker::kPackerHeader}}) {
    if (auto it = result.find(field); it != result.end() && it->is_object()) r.headers.set(header, it->dump());
  }
  return r;
}

std::optional<std::string> sealed_error_result(const net::Response& response) {
  if (response.status == 200) return std::nullopt;
  json result;
  if (response.headers.get_or("Content-Type", "") == crypto::kEnvelopeMediaType) {
    auto category = response.headers.get(worker::kErrorCategoryHeader);
    if (!category) return std::nullopt;
    auto envelope = crypto::convert_envelope(response.body, crypto::EnvelopeEncoding::kJson);
    if (!envelope.ok()) return std::nullopt;
    const ErrorCode code = net::error_code_for_http_status(response.status);
    result["error"] = {{"code", error_code_name(code)},
                       {"category", std::string(*category)},
                       {"message", worker::sealed_failure_message(*category)}};
    result["envelope"] = std::move(envelope).value();
    return result.dump();
  }
  result = json::parse(response.body, nullptr, false);
  if (!result.is_object() || !result.contains("envelope") || !result["envelope"].is_string() ||
      !result.contains("error") || !result["error"].is_object()) {
    return std::nullopt;
  }
  return response.body;  // byte for byte
}

std::optional<std::string> sealed_error_from_action_result(const json& result) {
  if (!result.is_object()) return std::nullopt;
  auto err = result.find("error");
  if (err == result.end() || !err->is_object()) return std::nullopt;
  for (const char* field : {"code", "category", "message", "envelope"}) {
    if (!err->contains(field) || !(*err)[field].is_string()) return std::nullopt;
  }
  json out;
  out["error"] = {{"code", (*err)["code"]}, {"category", (*err)["category"]}, {"message", (*err)["message"]}};
  out["envelope"] = (*err)["envelope"];
  return out.dump();
}

int result_http_status(std::string_view result_text) {
  // Only an error result has an "error" key; an envelope (base64 in JSON text) never holds the
  // quoted word, so a result is not parsed twice.
  if (result_text.find("\"error\"") == std::string_view::npos) return 200;
  json j = json::parse(result_text, nullptr, false);
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object() || !j["error"].contains("code") ||
      !j["error"]["code"].is_string()) {
    return 200;
  }
  return net::http_status_for(error_code_from_name(j["error"]["code"].get<std::string>()));
}

Result<std::string> json_request_from_binary(std::string_view envelope) {
  MOSS_ASSIGN_OR_RETURN(crypto::EnvelopeHeader header, crypto::peek_envelope_header(envelope));
  MOSS_ASSIGN_OR_RETURN(std::string text, crypto::convert_envelope(envelope, crypto::EnvelopeEncoding::kJson));
  return json{{"model_id", header.model_id}, {"envelope", std::move(text)}}.dump();
}

}  // namespace moss::packer
