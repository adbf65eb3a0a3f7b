#include "worker/key_client.h"

#include "attest/connection_attestation.h"
#include "common/logging.h"
#include "crypto/keyservice_state.h"
#include "crypto/signed_request.h"
#include "net/error_response.h"
#include "net/url.h"

#include <nlohmann/json.hpp>

#include <thread>

namespace moss::worker {

namespace {

bool transient(const Status& s) {
  return s.code() == ErrorCode::kUnavailable || s.code() == ErrorCode::kDeadlineExceeded;
}

}  // namespace

Result<attest::Policy> load_keyservice_policy(const std::string& path_or_json) {
  size_t i = path_or_json.find_first_not_of(" \t\r\n");
  if (i != std::string::npos && path_or_json[i] == '{') {
    auto p = attest::Policy::parse(path_or_json);
    if (!p.ok()) return std::move(p).status().with_context("keyservice_policy (inline JSON)");
    return p;
  }
  auto p = attest::Policy::load(path_or_json);
  if (!p.ok()) return std::move(p).status().with_context("keyservice_policy " + path_or_json);
  return p;
}

Result<std::unique_ptr<KeyClient>> KeyClient::create(KeyClientOptions options,
                                                     net::TlsCredentials credentials) {
  MOSS_ASSIGN_OR_RETURN(auto renewable, net::RenewableCredentials::create(std::move(credentials)));
  return create(std::move(options), std::move(renewable));
}

Result<std::unique_ptr<KeyClient>> KeyClient::create(KeyClientOptions options,
                                                     net::RenewableCredentialsPtr credentials) {
  net::FailoverOptions fo;
  MOSS_ASSIGN_OR_RETURN(fo.urls, net::parse_url_list(options.url));
  for (const std::string& u : fo.urls) {
    MOSS_ASSIGN_OR_RETURN(net::Url url, net::parse_url(u));
    if (!url.tls()) {
      return invalid_argument("keyservice_url {}: keys are released only over attested TLS (https)", u);
    }
  }
  if (!options.producer) return invalid_argument("the key client needs an evidence producer");
  if (options.attempts < 1) options.attempts = 1;
  options.server.purpose = kKeyServicePurpose;
  MOSS_ASSIGN_OR_RETURN(net::PeerVerifier verifier, attest::make_attested_peer_verifier(options.server));
  MOSS_ASSIGN_OR_RETURN(auto tls, net::ClientTlsContext::create(
                                      attest::attested_client_config(verifier, std::move(credentials))));
  net::ClientOptions& co = fo.client;
  co.tls = std::move(tls);
  co.connect_timeout = options.connect_timeout;
  co.read_timeout = options.read_timeout;
  co.max_response_body_bytes = 1 << 20;
  co.user_agent = "moss-worker";
  co.on_connect = attest::make_connection_attestation_hook(options.producer, kWorkerPurpose,
                                                           kAttestConnectionPath);
  fo.deadline = options.deadline;
  MOSS_ASSIGN_OR_RETURN(auto client, net::FailoverClient::create(std::move(fo)));
  return std::unique_ptr<KeyClient>(new KeyClient(std::move(options), std::move(client)));
}

KeyClient::KeyClient(KeyClientOptions options, net::FailoverClient client)
    : options_(std::move(options)), client_(std::move(client)) {}

uint64_t KeyClient::connections_opened() const {
  std::lock_guard lock(mu_);
  return client_.current().connections_opened();
}

namespace {

// A fork-check answer that cannot be judged: unavailable when another attempt may get one (the
// KeyService could not answer now, 5xx), else the refusal itself (a 4xx fails closed).
Status proof_failure(const Result<net::Response>& proof, const std::string& context) {
  if (!proof.ok()) return proof.status().with_context(context);
  Status s = net::status_from_response(*proof);
  if (proof->status >= 500 && !transient(s)) {
    return Status(ErrorCode::kUnavailable, context + ": HTTP " + std::to_string(proof->status) + ": " +
                                               s.message(), s.reason());
  }
  return s.with_context(context);
}

}  // namespace

Status KeyClient::judge_locked(const crypto::KeyServiceState& answered) {
  MOSS_ASSIGN_OR_RETURN(auto judged, crypto::judge_keyservice_state(options_.url, seen_, answered));
  if (judged == crypto::StateJudgement::kFresh) {
    seen_ = crypto::remember_fresh(seen_, answered);
    return Status::Ok();
  }
  // The log grew since this worker last looked: the KeyService proves its chain still holds what
  // was seen. Keys are not used until it has. The proof goes through the failover client: asked
  // first of the replica that answered (its connection), and of the next one when that one cannot
  // answer now (connection lost, timed out, 5xx; never after a 4xx).
  const std::string answered_by = client_.current_url();
  const std::string context = "KeyService at " + options_.url + " fork check";
  auto proof = client_.request(net::Request::make("GET", crypto::audit_proof_target(seen_)));
  if (!proof.ok() || proof->status != 200) return proof_failure(proof, context);
  MOSS_ASSIGN_OR_RETURN(auto proven, crypto::verify_audit_proof(options_.url, seen_, answered, proof->body));
  if (client_.current_url() != answered_by) {
    // Another replica proved its chain holds what was seen; that says nothing yet about the
    // instance that answered (a host could route the answer to a forked copy). So the same replica
    // also proves, on the same connection, that its chain holds the answer's head: one chain holds
    // both, so the answer continues what was seen.
    crypto::SeenKeyServiceState at_answer = proven;
    at_answer.audit_seq = answered.audit_seq;
    at_answer.audit_hash = answered.audit_hash;
    auto second = client_.current().get(crypto::audit_proof_target(at_answer));
    if (!second.ok()) client_.current().close();
    if (!second.ok() || second->status != 200) {
      return proof_failure(second, context + " (answer's head, at " + client_.current_url() + ")");
    }
    MOSS_ASSIGN_OR_RETURN(proven, crypto::verify_audit_proof(options_.url, at_answer, answered, second->body));
    if (proven.version < seen_.version) proven.version = seen_.version;
  }
  seen_ = proven;
  return Status::Ok();
}

Result<ReleasedKeys> KeyClient::release(std::string_view model_id, std::string_view user_id) {
  const std::string body =
      nlohmann::json{{"model_id", model_id}, {"user_id", user_id}}.dump();
  std::lock_guard lock(mu_);
  Status last;
  auto backoff = options_.backoff;
  for (int attempt = 1; attempt <= options_.attempts; ++attempt) {
    auto resp = client_.request(net::Request::make("POST", "/v1/release", body, "application/json"));
    if (resp.ok()) {
      // The KeyService's state must never go back or fork: an older version, or an audit log
      // that no longer holds what this worker saw, means its host put back an older copy of its
      // state (a revoked grant would be granted again).
      auto state = crypto::parse_keyservice_state(resp->headers.get(crypto::kHeaderStateVersion),
                                                  resp->headers.get(crypto::kHeaderAuditHead));
      if (!state && resp->status == 200) {
        return failed_precondition("keyservice-version-missing: KeyService at {} sent no state version "
                                   "and audit head", options_.url);
      }
      Status judged = state ? judge_locked(*state) : Status::Ok();
      if (!judged.ok()) {
        // A rollback or fork verdict, or a refused fork check, fails closed. A fork check no
        // replica could answer now (unavailable, timed out, 5xx) is a failed attempt: these keys
        // are not used, and the release is tried again (after the backoff, within the attempts).
        if (!transient(judged)) return judged;
        last = judged;
      } else if (resp->status == 200) {
        return parse_release_response(resp->body, model_id, user_id);
      }
      Status refused = judged.ok() ? net::status_from_response(*resp) : judged;
      if (!transient(refused)) {
        return Status(refused.code(),
                      "KeyService refused the keys for " + std::string(model_id) + ": " + refused.message(),
                      refused.reason());
      }
      last = refused;
    } else {
      last = resp.status();
      client_.current().close();  // a fresh connection (and handshake) on the next attempt
      if (!transient(last)) {
        return Status(last.code(), "KeyService at " + options_.url + ": " + last.message());
      }
    }
    log::get("worker")->warn("key release attempt {}/{} failed: {}", attempt, options_.attempts,
                             last.to_string());
    if (attempt < options_.attempts) {
      std::this_thread::sleep_for(backoff);
      backoff *= 2;
    }
  }
  return unavailable("KeyService at {} unavailable after {} attempts: {}", options_.url,
                     options_.attempts, last.message());
}

}  // namespace moss::worker
