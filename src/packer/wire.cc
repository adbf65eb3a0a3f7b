#include "packer/wire.h"

#include "crypto/envelope.h"
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
  if (auto run = result.find("run"); run != result.end() && run->is_string()) {
    r.headers.set(worker::kRunHeader, run->get_ref<const std::string&>());
  }
  for (const auto& [field, header] : {std::pair{"timing_ms", worker::kTimingHeader},
                                      std::pair{"packer", worker::kPackerHeader}}) {
    if (auto it = result.find(field); it != result.end() && it->is_object()) r.headers.set(header, it->dump());
  }
  return r;
}

Result<std::string> json_request_from_binary(std::string_view envelope) {
  MOSS_ASSIGN_OR_RETURN(crypto::EnvelopeHeader header, crypto::peek_envelope_header(envelope));
  MOSS_ASSIGN_OR_RETURN(std::string text, crypto::convert_envelope(envelope, crypto::EnvelopeEncoding::kJson));
  return json{{"model_id", header.model_id}, {"envelope", std::move(text)}}.dump();
}

}  // namespace moss::packer
