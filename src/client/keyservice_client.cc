#include "client/keyservice_client.h"

#include "attest/attested_tls.h"
#include "attest/policy.h"
#include "client/seen_state_versions.h"
#include "crypto/keyservice_state.h"
#include "common/encoding.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/signed_request.h"
#include "net/error_response.h"
#include "net/failover_client.h"

#include <chrono>

namespace moss::client {

struct KeyServiceClient::Impl {
  crypto::Identity identity;
  std::string principal_id;
  net::FailoverClient client;  // the replicas' URLs, one connection at a time
  std::string url;             // the configured URL list: the key of what was seen of this state
  std::filesystem::path state_dir;
  crypto::SeenKeyServiceState seen;  // also kept when there is no state directory
  Impl(crypto::Identity id, net::FailoverClient c, std::string u, std::filesystem::path dir)
      : identity(std::move(id)), principal_id(identity.principal_id()), client(std::move(c)),
        url(std::move(u)), state_dir(std::move(dir)) {}

  // Signs and sends one request on the (kept-alive) connection, failing over between replicas.
  Result<net::Response> send(std::string_view method, std::string_view target, std::string_view body) {
    // Signed afresh for every replica tried (a new time and nonce).
    net::Request req;
    auto res = client.call([&]() -> Result<net::Request> {
      if (!req.body.empty()) secure_wipe(req.body);  // may carry a key
      const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count();
      MOSS_ASSIGN_OR_RETURN(req, sign_request(identity, method, target, std::string(body), now));
      return req;
    });
    if (!req.body.empty()) secure_wipe(req.body);
    if (!res.ok()) return res.status().with_context("KeyService");
    return res;
  }

  // Judges an answer's state against what was seen before the request left (any answer to a
  // later request reflects at least that state); asks for the fork proof when the audit log grew.
  // Returns what to remember.
  Result<crypto::SeenKeyServiceState> judge(const crypto::SeenKeyServiceState& before,
                                            const crypto::KeyServiceState& answered) {
    auto judged = crypto::judge_keyservice_state(url, before, answered);
    if (!judged.ok()) return with_forget_hint(judged.status(), state_dir, url);
    if (*judged == crypto::StateJudgement::kFresh) return crypto::remember_fresh(before, answered);
    MOSS_ASSIGN_OR_RETURN(net::Response proof, send("GET", crypto::audit_proof_target(before), ""));
    if (proof.status < 200 || proof.status >= 300) {
      return net::status_from_response(proof).with_context("KeyService fork check");
    }
    auto proven = crypto::verify_audit_proof(url, before, answered, proof.body);
    if (!proven.ok()) return with_forget_hint(proven.status(), state_dir, url);
    return proven;
  }
};

KeyServiceClient::KeyServiceClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KeyServiceClient::KeyServiceClient(KeyServiceClient&&) noexcept = default;
KeyServiceClient& KeyServiceClient::operator=(KeyServiceClient&&) noexcept = default;
KeyServiceClient::~KeyServiceClient() = default;

Result<KeyServiceClient> KeyServiceClient::create(const ClientConfig& config) {
  auto identity = crypto::Identity::load(config.identity);
  if (!identity.ok()) return identity.status().with_context("identity " + config.identity.string());
  return create(config, std::move(identity).value());
}

Result<KeyServiceClient> KeyServiceClient::create(const ClientConfig& config, crypto::Identity identity) {
  auto policy = attest::Policy::load(config.keyservice_policy);
  if (!policy.ok()) return policy.status().with_context("keyservice policy");
  attest::AttestedPeerConfig peer;
  peer.purpose = kKeyServicePurpose;
  peer.verify.allow_simulated = config.allow_simulated && policy->allow_simulated;
  if (peer.verify.allow_simulated) {
    auto key = attest::SimPlatformKey::load_public_key(effective_sim_key_file(config));
    if (!key.ok()) return key.status().with_context("simulated platform key");
    peer.verify.sim_platform_key = *key;
  }
  peer.policy = std::move(policy).value();
  MOSS_ASSIGN_OR_RETURN(auto verifier, attest::make_attested_peer_verifier(std::move(peer)));
  MOSS_ASSIGN_OR_RETURN(auto tls, net::ClientTlsContext::create(
                                      attest::attested_client_config(std::move(verifier))));
  net::ClientOptions options;
  options.tls = tls;
  options.read_timeout = std::chrono::seconds(30);
  options.max_response_body_bytes = 16 * 1024 * 1024;
  net::FailoverOptions fo;
  MOSS_ASSIGN_OR_RETURN(fo.urls, net::parse_url_list(config.keyservice_url));
  fo.client = options;
  fo.deadline = std::chrono::seconds(60);
  MOSS_ASSIGN_OR_RETURN(auto client, net::FailoverClient::create(std::move(fo)));
  return KeyServiceClient(std::make_unique<Impl>(std::move(identity), std::move(client),
                                                config.keyservice_url, config.state_dir));
}

const std::string& KeyServiceClient::principal_id() const { return impl_->principal_id; }

Status KeyServiceClient::connect() {
  Status s = impl_->client.connect();
  if (!s.ok()) return std::move(s).with_context("KeyService attestation/connection");
  return Status::Ok();
}

const attest::Claims* KeyServiceClient::keyservice_claims() const {
  auto peer = std::dynamic_pointer_cast<const attest::AttestedPeerIdentity>(impl_->client.current().peer());
  return peer ? &peer->claims : nullptr;
}

Result<net::Request> sign_request(const crypto::Identity& identity, std::string_view method,
                                  std::string_view target, std::string body, int64_t unix_seconds) {
  net::Request req = net::Request::make(std::string(method), std::string(target), std::move(body),
                                        "application/json");
  std::array<uint8_t, 16> nonce_bytes{};
  MOSS_RETURN_IF_ERROR(crypto::random_bytes(nonce_bytes));
  std::string nonce = hex_encode(nonce_bytes);
  std::string body_hash = hex_encode(sha256(as_bytes(req.body)));
  std::string id = identity.principal_id();
  std::string message =
      crypto::request_signing_message(method, target, body_hash, unix_seconds, nonce, id);
  MOSS_ASSIGN_OR_RETURN(auto sig, identity.sign(as_bytes(message)));
  req.headers.set(crypto::kHeaderPrincipal, id);
  req.headers.set(crypto::kHeaderTimestamp, std::to_string(unix_seconds));
  req.headers.set(crypto::kHeaderNonce, nonce);
  req.headers.set(crypto::kHeaderBodySha256, body_hash);
  req.headers.set(crypto::kHeaderSignature, base64_encode(sig));
  return req;
}

Result<nlohmann::json> KeyServiceClient::call(std::string_view method, std::string_view target,
                                              std::string_view body) {
  // Connect (and verify the KeyService's evidence) before any request is built and sent.
  MOSS_RETURN_IF_ERROR(connect());
  MOSS_ASSIGN_OR_RETURN(auto seen, seen_keyservice_state(impl_->state_dir, impl_->url));
  if (impl_->seen.version > seen.version) seen = impl_->seen;
  MOSS_ASSIGN_OR_RETURN(net::Response res, impl_->send(method, target, body));
  // Every answer of the (attested) KeyService carries its state version and audit head; an older
  // version means its host rolled the state back, another head at or before the remembered one
  // (or one that cannot prove the remembered chain value) that it forked.
  auto state = crypto::parse_keyservice_state(res.headers.get(crypto::kHeaderStateVersion),
                                              res.headers.get(crypto::kHeaderAuditHead));
  // Answers of the HTTP layer itself (413, unknown route) carry none; they are errors anyway.
  if (!state) {
    if (res.status < 200 || res.status >= 300) return net::status_from_response(res);
    return failed_precondition("keyservice-version-missing: the KeyService answer has no valid {} and {} headers",
                               crypto::kHeaderStateVersion, crypto::kHeaderAuditHead);
  }
  MOSS_ASSIGN_OR_RETURN(auto now, impl_->judge(seen, *state));
  MOSS_RETURN_IF_ERROR(record_keyservice_state(impl_->state_dir, impl_->url, now));
  impl_->seen = std::move(now);
  MOSS_RETURN_IF_ERROR(net::status_from_response(res));
  auto j = nlohmann::json::parse(res.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return internal_error("KeyService answered with invalid JSON");
  return j;
}

namespace {
// <owner>/<name> -> "/v1/models/<owner>/<name>"
std::string model_path(std::string_view model_id) { return "/v1/models/" + std::string(model_id); }

// The JSON body with a base64 key, as a string whose copies we wipe.
std::string body_with_key(nlohmann::json fields, std::span<const uint8_t> key) {
  std::string b64 = base64_encode(key);
  std::string head = fields.dump();  // {"a":..} -> insert ,"key":"..." before the closing brace
  std::string out;
  out.reserve(head.size() + b64.size() + 16);
  out.append(head, 0, head.size() - 1);
  if (head.size() > 2) out += ",";
  out += "\"key\":\"";
  out += b64;
  out += "\"}";
  secure_wipe(b64);
  return out;
}
}  // namespace

Result<nlohmann::json> KeyServiceClient::register_self() {
  nlohmann::json body = {{"public_key", base64_encode(impl_->identity.public_key().raw())}};
  return call("POST", "/v1/principals", body.dump());
}

Result<nlohmann::json> KeyServiceClient::put_model_key(std::string_view model_id,
                                                       std::span<const uint8_t> key, bool rotate) {
  std::string body = body_with_key({{"rotate", rotate}}, key);
  auto r = call("POST", model_path(model_id) + "/keys", body);
  secure_wipe(body);
  return r;
}

Result<nlohmann::json> KeyServiceClient::retire_model_key(std::string_view model_id, uint32_t version) {
  return call("POST", model_path(model_id) + "/keys/" + std::to_string(version) + "/retire", "{}");
}

Result<nlohmann::json> KeyServiceClient::add_grant(std::string_view model_id, std::string_view user_id,
                                                   std::string_view measurement) {
  nlohmann::json body = {{"user_id", user_id}, {"measurement", measurement}};
  return call("POST", model_path(model_id) + "/grants", body.dump());
}

Result<nlohmann::json> KeyServiceClient::revoke_grant(std::string_view model_id,
                                                      std::string_view user_id,
                                                      std::string_view measurement) {
  nlohmann::json body = {{"user_id", user_id}, {"measurement", measurement}};
  return call("POST", model_path(model_id) + "/grants/revoke", body.dump());
}

Result<nlohmann::json> KeyServiceClient::list_grants(std::string_view model_id) {
  return call("GET", model_path(model_id) + "/grants");
}

Result<nlohmann::json> KeyServiceClient::put_request_key(std::string_view model_id,
                                                         std::string_view measurement,
                                                         std::span<const uint8_t> key) {
  std::string body = body_with_key({{"model_id", model_id}, {"measurement", measurement}}, key);
  auto r = call("POST", "/v1/request-keys", body);
  secure_wipe(body);
  return r;
}

Result<nlohmann::json> KeyServiceClient::delete_request_key(std::string_view model_id,
                                                            std::string_view measurement) {
  nlohmann::json body = {{"model_id", model_id}, {"measurement", measurement}};
  return call("POST", "/v1/request-keys/delete", body.dump());
}

Result<nlohmann::json> KeyServiceClient::delete_model(std::string_view model_id) {
  return call("DELETE", model_path(model_id));
}

Result<nlohmann::json> KeyServiceClient::audit_head() {
  MOSS_ASSIGN_OR_RETURN(auto j, call("GET", "/v1/audit/head"));
  auto bad = [] { return data_loss("audit-head-signature-invalid: the signed audit head does not verify"); };
  if (!j.is_object() || !j["seq"].is_number_integer() || !j["hash"].is_string() ||
      !j["state_version"].is_number_integer() || !j["keyservice_key"].is_string() ||
      !j["signature"].is_string()) {
    return bad();
  }
  auto raw = base64_decode(j["keyservice_key"].get<std::string>(), crypto::kEd25519PublicKeySize);
  auto sig = base64_decode(j["signature"].get<std::string>(), crypto::kEd25519SignatureSize);
  if (!raw.ok() || !sig.ok()) return bad();
  auto key = crypto::PublicKey::from_raw(*raw);
  std::string message = crypto::audit_head_signing_message(
      j["seq"].get<int64_t>(), j["hash"].get<std::string>(), j["state_version"].get<int64_t>());
  if (!key.ok() || !key->verify(as_bytes(message), *sig).ok()) return bad();
  // The state identity a fork proof pinned is the one this state signs with.
  if (!impl_->seen.keyservice_key.empty() &&
      impl_->seen.keyservice_key != j["keyservice_key"].get<std::string>()) {
    return with_forget_hint(failed_precondition("keyservice-forked: the KeyService at {} signed its "
                                                "audit head with another state identity",
                                                impl_->url),
                            impl_->state_dir, impl_->url);
  }
  return j;
}

Result<nlohmann::json> KeyServiceClient::audit(std::string_view model_id, int64_t after, int64_t limit) {
  std::string target = "/v1/audit?after=" + std::to_string(after) + "&limit=" + std::to_string(limit);
  if (!model_id.empty()) target += "&model_id=" + std::string(model_id);
  return call("GET", target);
}

}  // namespace moss::client
