#include "keyservice/refusal.h"

#include "net/error_response.h"

#include <nlohmann/json.hpp>

namespace moss::keyservice {

Status refuse(ErrorCode code, std::string_view reason, std::string_view message) {
  return Status(code, fmt::format("{}: {}", reason, message));
}

std::string_view reason_of(const Status& status) {
  std::string_view m = status.message();
  size_t colon = m.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 40) return {};
  for (char c : m.substr(0, colon)) {
    if (!((c >= 'a' && c <= 'z') || c == '-')) return {};
  }
  return m.substr(0, colon);
}

net::Response refusal_response(const Status& status, int http_status) {
  if (http_status == 0) http_status = net::http_status_for(status.code());
  std::string_view reason = reason_of(status);
  // Internal errors carry no detail to the client (it goes to the log instead).
  bool internal = status.code() == ErrorCode::kInternal || status.code() == ErrorCode::kDataLoss;
  nlohmann::json e = {{"code", error_code_name(status.code())},
                      {"reason", internal ? "internal" : (reason.empty() ? "bad-request" : reason)},
                      {"message", internal ? "internal error" : status.message()}};
  nlohmann::json j = {{"error", e}};
  return net::Response::json(http_status,
                             j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace moss::keyservice
