// KeyServiceClient: the owner's and user's side of the KeyService API (docs/keyservice-api.md).
//
// Before anything is sent, the TLS handshake verifies the KeyService's attested certificate
// (purpose "moss-keyservice") against the policy named in the client config; simulated evidence
// only when both the config and the policy allow it. Every request is then signed with the
// principal's Ed25519 identity (method, target, body hash, time, fresh nonce).
// Not thread-safe (one connection); create one per thread.
#pragma once

#include "attest/claims.h"
#include "client/client_config.h"
#include "common/status.h"
#include "crypto/identity.h"
#include "net/client.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace moss::client {

inline constexpr char kKeyServicePurpose[] = "moss-keyservice";

class KeyServiceClient {
 public:
  // Loads the identity and the policy named in `config` and prepares the attested TLS context.
  // Does not connect yet.
  static Result<KeyServiceClient> create(const ClientConfig& config);
  // As above with an identity given directly (tests, tools).
  static Result<KeyServiceClient> create(const ClientConfig& config, crypto::Identity identity);

  KeyServiceClient(KeyServiceClient&&) noexcept;
  KeyServiceClient& operator=(KeyServiceClient&&) noexcept;
  ~KeyServiceClient();

  const std::string& principal_id() const;
  // Connects and verifies the KeyService now (calls do it themselves).
  Status connect();
  // The verified claims of the KeyService (after a successful connection), else nullptr.
  const attest::Claims* keyservice_claims() const;

  // A signed request; the JSON answer of a 2xx response, else the server's refusal as a Status
  // (message "<reason>: ..."). Every answer's state version and audit head are judged against what
  // was seen of this KeyService (seen_state_versions.h, crypto/keyservice_state.h): an older
  // version is refused ("keyservice-rollback"); a log that grew is proven with one more request
  // (GET /v1/audit/head?at=<seq>) and a forked one refused ("keyservice-forked").
  Result<nlohmann::json> call(std::string_view method, std::string_view target,
                              std::string_view body = {});

  // The API, one call each.
  Result<nlohmann::json> register_self();
  Result<nlohmann::json> put_model_key(std::string_view model_id, std::span<const uint8_t> key,
                                       bool rotate);
  Result<nlohmann::json> retire_model_key(std::string_view model_id, uint32_t version);
  Result<nlohmann::json> add_grant(std::string_view model_id, std::string_view user_id,
                                   std::string_view measurement);
  Result<nlohmann::json> revoke_grant(std::string_view model_id, std::string_view user_id,
                                      std::string_view measurement);
  Result<nlohmann::json> list_grants(std::string_view model_id);
  Result<nlohmann::json> put_request_key(std::string_view model_id, std::string_view measurement,
                                         std::span<const uint8_t> key);
  Result<nlohmann::json> delete_request_key(std::string_view model_id, std::string_view measurement);
  Result<nlohmann::json> delete_model(std::string_view model_id);
  Result<nlohmann::json> audit(std::string_view model_id, int64_t after, int64_t limit);
  // The audit head signed by the KeyService's state identity (seq, hash, state_version,
  // keyservice_key, signature), its signature checked ("audit-head-signature-invalid") and its
  // key against the state identity a fork proof pinned ("keyservice-forked").
  Result<nlohmann::json> audit_head();

 private:
  struct Impl;
  explicit KeyServiceClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The signed-request headers for one request (exposed for tests that build requests by hand).
Result<net::Request> sign_request(const crypto::Identity& identity, std::string_view method,
                                  std::string_view target, std::string body, int64_t unix_seconds);

}  // namespace moss::client
