// Test helpers for the KeyService: simulated-TEE policies, an attested test worker, client configs.
// Shared by tests/unit/keyservice and tests/integration (keyservice_*_test.cc).
#pragma once

#include "attest/attested_tls.h"
#include "attest/connection_attestation.h"
#include "attest/simulated.h"
#include "common/encoding.h"
#include "common/file_util.h"
#include "net/client.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace moss::kstest {
namespace fs = std::filesystem;

inline std::string sim_measurement(const fs::path& binary, const std::string& identity) {
  auto m = attest::simulated_measurement(binary, identity);
  return m.ok() ? hex_encode(*m) : std::string();
}

// A policy accepting the simulated TEE with exactly these measurements.
inline std::string sim_policy_json(const std::vector<std::string>& measurements) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& m : measurements) list.push_back({{"tee", "simulated"}, {"measurement", m}});
  nlohmann::json j = {{"version", 1}, {"name", "test"}, {"allow_simulated", true},
                      {"measurements", list}};
  return j.dump();
}

// A client that attests the KeyService (simulated TEE, exactly `keyservice_measurement`) but has
// no identity of its own: it sends requests as given, signed or not.
inline net::Client attested_raw_client(uint16_t port, const std::string& keyservice_measurement,
                                       const fs::path& sim_key) {
  attest::AttestedPeerConfig peer;
  peer.purpose = "moss-keyservice";
  peer.policy = attest::Policy::parse(sim_policy_json({keyservice_measurement})).value_or_die();
  peer.verify.allow_simulated = true;
  peer.verify.sim_platform_key = attest::SimPlatformKey::load_public_key(sim_key).value_or_die();
  net::ClientOptions o;
  o.port = port;
  o.tls = net::ClientTlsContext::create(attest::attested_client_config(
      attest::make_attested_peer_verifier(peer).value_or_die())).value_or_die();
  return net::Client(o);
}

// A client config file for a principal in `dir` (identity.pem there).
inline void write_client_config(const fs::path& dir, uint16_t port, const fs::path& policy,
                                const fs::path& sim_key, bool allow_simulated = true) {
  nlohmann::json j = {{"keyservice_url", "https://127.0.0.1:" + std::to_string(port)},
                      {"keyservice_policy", policy.string()},
                      {"identity", "identity.pem"},
                      {"state_dir", "."},
                      {"allow_simulated", allow_simulated},
                      {"sim_key_file", sim_key.string()}};
  (void)write_text_file(dir / "client.json", j.dump());
}

// An attested worker in the simulated TEE (this test binary, measured with `identity`).
class TestWorker {
 public:
  // `keyservice_measurement`: what the worker requires of the KeyService. Like the real worker,
  // it proves fresh attestation on every new connection unless `attest_connections` is false.
  static Result<TestWorker> create(const fs::path& sim_key, const std::string& identity,
                                   const std::string& keyservice_measurement, uint16_t port,
                                   bool attest_connections = true) {
    attest::ProducerConfig pc;
    pc.kind = "sim";
    pc.sim_key_file = sim_key;
    pc.sim_identity = identity;
    MOSS_ASSIGN_OR_RETURN(auto made, attest::make_producer(pc));
    std::shared_ptr<attest::EvidenceProducer> producer = attest::make_shared_producer(std::move(made));
    attest::AttestedCredentialOptions co;
    co.purpose = "moss-worker";
    MOSS_ASSIGN_OR_RETURN(auto creds, attest::make_attested_credentials(*producer, co));
    attest::AttestedPeerConfig peer;
    peer.purpose = "moss-keyservice";
    MOSS_ASSIGN_OR_RETURN(peer.policy, attest::Policy::parse(sim_policy_json({keyservice_measurement})));
    peer.verify.allow_simulated = true;
    MOSS_ASSIGN_OR_RETURN(peer.verify.sim_platform_key, attest::SimPlatformKey::load_public_key(sim_key));
    MOSS_ASSIGN_OR_RETURN(auto verifier, attest::make_attested_peer_verifier(std::move(peer)));
    MOSS_ASSIGN_OR_RETURN(auto tls, net::ClientTlsContext::create(
                                        attest::attested_client_config(verifier, std::move(creds))));
    net::ClientOptions o;
    o.port = port;
    o.tls = tls;
    if (attest_connections)
      o.on_connect = attest::make_connection_attestation_hook(producer, "moss-worker", "/v1/attest-connection");
    TestWorker w(net::Client(std::move(o)));
    w.producer = producer;
    w.measurement = sim_measurement("/proc/self/exe", identity);
    return w;
  }

  Result<net::Response> release(const std::string& model_id, const std::string& user_id) {
    nlohmann::json body = {{"model_id", model_id}, {"user_id", user_id}};
    return client_.post("/v1/release", body.dump());
  }
  net::Client& client() { return client_; }

  std::string measurement;
  std::shared_ptr<attest::EvidenceProducer> producer;

 private:
  explicit TestWorker(net::Client c) : client_(std::move(c)) {}
  net::Client client_;
};

inline std::string reason_of(const net::Response& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("error")) return "";
  return j["error"].value("reason", "");
}

}  // namespace moss::kstest
