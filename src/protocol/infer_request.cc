#include "protocol/infer_request.h"

#include "common/strict_json.h"
#include "protocol/ids.h"

#include <charconv>

namespace moss::protocol {

namespace {

Result<int64_t> checked_deadline(const nlohmann::ordered_json& value) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > kMaxDeadlineMs) {
    return invalid_argument("'deadline_ms' must be an integer in [0, {}]", kMaxDeadlineMs);
  }
  return value.get<int64_t>();
}

}  // namespace

std::string InferRequest::to_json() const {
  nlohmann::ordered_json j = {{"model_id", model_id}, {"envelope", envelope}};
  if (deadline_ms) j["deadline_ms"] = *deadline_ms;
  return j.dump();
}

Result<InferRequest> InferRequest::from_json(const nlohmann::ordered_json& body) {
  if (!body.is_object()) return invalid_argument("the request body must be a JSON object");
  for (const auto& [key, value] : body.items()) {
    if (key != "model_id" && key != "envelope" && key != "deadline_ms") {
      return invalid_argument("the request body has an unknown key {}", quote_input_name(key));
    }
  }
  auto model = body.find("model_id");
  if (model == body.end() || !model->is_string()) return invalid_argument("'model_id' (string) is required");
  auto envelope = body.find("envelope");
  if (envelope == body.end() || !envelope->is_string()) {
    return invalid_argument("'envelope' (string: the request envelope's JSON text) is required");
  }
  InferRequest r;
  r.model_id = model->get<std::string>();
  MOSS_RETURN_IF_ERROR(validate_model_id(r.model_id).with_context("'model_id'"));
  r.envelope = envelope->get<std::string>();
  if (auto d = body.find("deadline_ms"); d != body.end()) {
    MOSS_ASSIGN_OR_RETURN(r.deadline_ms, checked_deadline(*d));
  }
  return r;
}

Result<InferRequest> InferRequest::from_json_text(std::string_view text) {
  // Depth 2 is all the shape allows; the envelope is one long string.
  MOSS_ASSIGN_OR_RETURN(auto body, parse_json_strict(text, "request body", 2));
  return from_json(body);
}

Result<int64_t> parse_deadline_ms(std::string_view text) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || text.size() > 10 || ec != std::errc() || end != text.data() + text.size() || v < 0 ||
      v > kMaxDeadlineMs) {
    return invalid_argument("the deadline header must be an integer in [0, {}]", kMaxDeadlineMs);
  }
  return v;
}

}  // namespace moss::protocol
