#include "keyservice/replica_provisioning.h"

#include "common/encoding.h"
#include "common/logging.h"
#include "common/strict_json.h"
#include "keyservice/keyservice_server.h"
#include "keyservice/replica_state_key.h"
#include "net/client.h"
#include "net/error_response.h"

#include <nlohmann/json.hpp>

namespace moss::keyservice {

namespace {

// The state key as a JSON body whose buffers are wiped (the HTTP layer's copies are not: see
// docs/keyservice.md, "Limits").
std::string state_key_body(const SecretBytes& key) {
  std::string b64 = base64_encode(key.span());
  std::string out = "{\"state_key\":\"" + b64 + "\"}";
  secure_wipe(b64);
  return out;
}

}  // namespace

Result<net::ServerPtr> start_replica_server(std::string host, uint16_t port,
                                            net::RenewableCredentialsPtr credentials,
                                            attest::AttestedPeerConfig peer, SecretBytes state_key,
                                            std::string prefix) {
  peer.purpose = kKeyServicePurpose;
  MOSS_ASSIGN_OR_RETURN(net::PeerVerifier verifier, attest::make_attested_peer_verifier(std::move(peer)));
  net::TlsServerConfig tls = attest::attested_server_config(std::move(credentials), std::move(verifier));
  tls.require_client_cert = true;  // only an attested replica gets as far as a request

  auto key = std::make_shared<const SecretBytes>(std::move(state_key));
  net::Router r;
  r.get("/healthz", [](const net::Request&) { return net::Response::text(200, "ok\n"); });
  r.post(kReplicaStateKeyPath, [key, prefix = std::move(prefix)](const net::Request& req) {
    auto replica = std::dynamic_pointer_cast<const attest::AttestedPeerIdentity>(req.peer);
    if (!replica) {
      return net::error_response(refuse(ErrorCode::kUnauthenticated, "replica-not-attested",
                                     "the replica port serves attested replicas only"));
    }
    auto body = parse_json_strict(req.body, "replica request", 4);
    if (!body.ok() || !body->is_object() || !body->contains("prefix") || !(*body)["prefix"].is_string()) {
      return net::error_response(refuse(ErrorCode::kInvalidArgument, "bad-request",
                                     "body must be {\"prefix\": \"<etcd prefix>\"}"));
    }
    if ((*body)["prefix"].get<std::string>() != prefix) {
      return net::error_response(refuse(ErrorCode::kFailedPrecondition, "replica-prefix-mismatch",
                                     "this replica serves another etcd prefix"), 409);
    }
    log::get("keyservice")->info("replica provisioned measurement={} from={}",
                                 replica->claims.measurement, req.remote_address);
    std::string out = state_key_body(*key);
    auto res = net::Response::json(200, out);
    secure_wipe(out);
    return res;
  });
  net::ServerOptions so;
  so.host = std::move(host);
  so.port = port;
  so.worker_threads = 1;
  so.max_body_bytes = 4 * 1024;
  so.max_connections = 64;
  so.read_timeout = std::chrono::seconds(10);
  so.tls = std::move(tls);
  so.name = "keyservice-replica";
  return net::Server::start(std::move(so), std::move(r));
}

Result<SecretBytes> fetch_state_key(std::string_view url, net::RenewableCredentialsPtr credentials,
                                    attest::AttestedPeerConfig peer, std::string_view prefix) {
  auto failed = [&](const Status& s) {
    return refuse(s.code(), "replica-join-failed", fmt::format("{}: {}", url, s.message()));
  };
  peer.purpose = kKeyServicePurpose;
  MOSS_ASSIGN_OR_RETURN(net::PeerVerifier verifier, attest::make_attested_peer_verifier(std::move(peer)));
  MOSS_ASSIGN_OR_RETURN(auto tls, net::ClientTlsContext::create(
                                      attest::attested_client_config(std::move(verifier), std::move(credentials))));
  net::ClientOptions co;
  co.tls = std::move(tls);
  co.connect_timeout = std::chrono::seconds(10);
  co.read_timeout = std::chrono::seconds(10);
  co.max_response_body_bytes = 4 * 1024;
  co.user_agent = "moss-keyservice";
  auto client = net::Client::for_url(url, co);
  if (!client.ok()) return failed(client.status());
  auto res = client->post(kReplicaStateKeyPath, nlohmann::json({{"prefix", prefix}}).dump());
  if (!res.ok()) return failed(res.status());
  if (res->status != 200) return failed(net::status_from_response(*res));
  auto j = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  secure_wipe(res->body);
  if (!j.is_object() || !j.contains("state_key") || !j["state_key"].is_string()) {
    return failed(invalid_argument("answer has no state_key"));
  }
  std::string& b64 = j["state_key"].get_ref<std::string&>();
  auto key = base64_decode_secret(b64, kStateKeyBytes);
  secure_wipe(b64);
  if (!key.ok() || key->size() != kStateKeyBytes) return failed(invalid_argument("state_key is not 32 bytes"));
  return key;
}

}  // namespace moss::keyservice
