// User endpoints: request keys (docs/keyservice-api.md "Request keys").
#include "keyservice/request_body.h"
#include "keyservice/service.h"

namespace moss::keyservice {

Result<net::Response> KeyService::put_request_key(const std::string& p, const net::Request& req) {
  MOSS_ASSIGN_OR_RETURN(auto body, parse_body(req.body, {"model_id", "measurement", "key"}));
  MOSS_ASSIGN_OR_RETURN(std::string model_id, model_id_field(body, "model_id"));
  MOSS_ASSIGN_OR_RETURN(std::string m, measurement_field(body, "measurement"));
  MOSS_ASSIGN_OR_RETURN(SecretBytes key, key_field(body, "key"));
  MOSS_ASSIGN_OR_RETURN(auto put, state_.put_request_key(p, model_id, m, key.span()));
  nlohmann::json j = {{"model_id", model_id}, {"measurement", m}, {"version", put.version}};
  // The same answer whether or not the model exists (no oracle for which models exist).
  return net::Response::json(put.version == 1 && put.created ? 201 : 200, j.dump());
}

Result<net::Response> KeyService::delete_request_key(const std::string& p, const net::Request& req) {
  MOSS_ASSIGN_OR_RETURN(auto body, parse_body(req.body, {"model_id", "measurement"}));
  MOSS_ASSIGN_OR_RETURN(std::string model_id, model_id_field(body, "model_id"));
  MOSS_ASSIGN_OR_RETURN(std::string m, measurement_field(body, "measurement"));
  MOSS_RETURN_IF_ERROR(state_.delete_request_key(p, model_id, m));
  nlohmann::json j = {{"model_id", model_id}, {"measurement", m}, {"deleted", true}};
  return net::Response::json(200, j.dump());
}

}  // namespace moss::keyservice
