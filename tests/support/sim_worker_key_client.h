// The worker's key client (worker::KeyClient) as tests and benches run it: this process in the
// simulated TEE, measured with `identity` (so a policy naming sim_measurement("/proc/self/exe",
// identity) admits it), judging the KeyService at `urls` (one URL, or replicas as a list) against
// the policy file `keyservice_policy`. Needs moss_worker and moss_attest.
#pragma once

#include "attest/attested_tls.h"
#include "attest/simulated.h"
#include "worker/key_client.h"

#include <filesystem>
#include <memory>
#include <string>

namespace moss::test_support {

inline Result<std::unique_ptr<worker::KeyClient>> sim_worker_key_client(
    const std::filesystem::path& sim_key, const std::string& identity, const std::string& urls,
    const std::filesystem::path& keyservice_policy) {
  attest::ProducerConfig pc;
  pc.kind = "sim";
  pc.sim_key_file = sim_key;
  pc.sim_identity = identity;
  MOSS_ASSIGN_OR_RETURN(auto made, attest::make_producer(pc));
  std::shared_ptr<attest::EvidenceProducer> producer = attest::make_shared_producer(std::move(made));
  attest::AttestedCredentialOptions co;
  co.purpose = worker::kWorkerPurpose;
  MOSS_ASSIGN_OR_RETURN(auto creds, attest::make_attested_credentials(*producer, co));
  worker::KeyClientOptions o;
  o.url = urls;
  MOSS_ASSIGN_OR_RETURN(o.server.policy, attest::Policy::load(keyservice_policy));
  o.server.verify.allow_simulated = true;
  MOSS_ASSIGN_OR_RETURN(o.server.verify.sim_platform_key, attest::SimPlatformKey::load_public_key(sim_key));
  o.producer = producer;
  return worker::KeyClient::create(std::move(o), std::move(creds));
}

}  // namespace moss::test_support
