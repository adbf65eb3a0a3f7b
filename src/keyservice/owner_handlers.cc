// Owner endpoints: model key versions and grants (docs/keyservice-api.md "Model keys", "Grants").
#include "keyservice/request_body.h"
#include "keyservice/service.h"

#include <charconv>

namespace moss::keyservice {

Result<net::Response> KeyService::put_model_key(const std::string& p, const net::Request& req) {
  MOSS_ASSIGN_OR_RETURN(std::string model_id, owned_model(req, p));
  MOSS_ASSIGN_OR_RETURN(auto body, parse_body(req.body, {"key"}, {"rotate"}));
  MOSS_ASSIGN_OR_RETURN(bool rotate, flag_field_or(body, "rotate", false));
  MOSS_ASSIGN_OR_RETURN(SecretBytes key, key_field(body, "key"));
  MOSS_ASSIGN_OR_RETURN(auto put, state_.put_model_key(p, model_id, key.span(), rotate));
  nlohmann::json j = {{"model_id", model_id}, {"version", put.version}, {"created", put.created}};
  return net::Response::json(put.created ? 201 : 200, j.dump());
}

Result<net::Response> KeyService::retire_model_key(const std::string& p, const net::Request& req) {
  MOSS_ASSIGN_OR_RETURN(std::string model_id, owned_model(req, p));
  std::string_view v = req.param("version");
  uint32_t version = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), version);
  if (ec != std::errc() || ptr != v.data() + v.size() || version == 0) {
    return bad_request("key version must be a positive integer");
  }
  MOSS_RETURN_IF_ERROR(state_.retire_model_key(p, model_id, version));
  nlohmann::json j = {{"model_id", model_id}, {"version", version}, {"retired", true}};
  return net::Response::json(200, j.dump());
}

Result<net::Response> KeyService::list_model_keys(const std::string& p, const net::Request& req) {
  MOSS_ASSIGN_OR_RETURN(std::string model_id, owned_model(req, p));
  MOSS_ASSIGN_OR_RETURN(auto versions, state_.list_model_keys(model_id));
  nlohmann::json list = nlohmann::json::array();
  for (const auto& v : versions) {
    list.push_back({{"version", v.version}, {"retired", v.retired}, {"created_at", v.created_ms}});
  }
  nlohmann::json j = {{"model_id", model_id}, {"versions", std::move(list)}};
  return net::Response::json(200, j.dump());
}

Result<net::Response> KeyService::delete_model(const std::string& p, const net::Request& req) {
  MOSS_ASSIGN_OR_RETURN(std::string model_id, owned_model(req, p));
  MOSS_RETURN_IF_ERROR(state_.delete_model(p, model_id));
  nlohmann::json j = {{"model_id", model_id}, {"deleted", true}};
  return net::Response::json(200, j.dump());
}

Result<net::Response> KeyService::add_grant(const std::string& p, const net::Request& req) {
  MOSS_ASSIGN_OR_RETURN(std::string model_id, owned_model(req, p));
  MOSS_ASSIGN_OR_RETURN(auto body, parse_body(req.body, {"user_id", "measurement"}));
  MOSS_ASSIGN_OR_RETURN(std::string user, principal_field(body, "user_id"));
  MOSS_ASSIGN_OR_RETURN(std::string m, measurement_field(body, "measurement"));
  MOSS_ASSIGN_OR_RETURN(bool created, state_.add_grant(p, model_id, user, m));
  nlohmann::json j = {{"model_id", model_id}, {"user_id", user}, {"measurement", m},
                      {"created", created}};
  return net::Response::json(created ? 201 : 200, j.dump());
}

Result<net::Response> KeyService::revoke_grant(const std::string& p, const net::Request& req) {
  MOSS_ASSIGN_OR_RETURN(std::string model_id, owned_model(req, p));
  MOSS_ASSIGN_OR_RETURN(auto body, parse_body(req.body, {"user_id", "measurement"}));
  MOSS_ASSIGN_OR_RETURN(std::string user, principal_field(body, "user_id"));
  MOSS_ASSIGN_OR_RETURN(std::string m, measurement_field(body, "measurement"));
  MOSS_RETURN_IF_ERROR(state_.revoke_grant(p, model_id, user, m));
  nlohmann::json j = {{"model_id", model_id}, {"user_id", user}, {"measurement", m},
                      {"revoked", true}};
  return net::Response::json(200, j.dump());
}

Result<net::Response> KeyService::list_grants(const std::string& p, const net::Request& req) {
  MOSS_ASSIGN_OR_RETURN(std::string model_id, owned_model(req, p));
  MOSS_ASSIGN_OR_RETURN(auto grants, state_.list_grants(model_id));
  nlohmann::json list = nlohmann::json::array();
  for (const auto& g : grants) {
    list.push_back({{"user_id", g.user_id}, {"measurement", g.measurement}, {"created_at", g.created_ms}});
  }
  nlohmann::json j = {{"model_id", model_id}, {"grants", std::move(list)}};
  return net::Response::json(200, j.dump());
}

}  // namespace moss::keyservice
