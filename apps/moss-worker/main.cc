// moss-worker: the SeMIRT worker. Parses configuration and wires the parts together: the TEE
// evidence producer, attested credentials and the KeyService client, the model store, the caches
// and inference service (src/worker), and the HTTP server. Everything else lives in src/worker.
#include "attest/attested_tls.h"
#include "attest/evidence_producer.h"
#include "attest/simulated.h"
#include "common/logging.h"
#include "common/service_main.h"
#include "net/server.h"
#include "worker/key_client.h"
#include "worker/worker_app.h"
#include "worker/worker_config.h"

#include <cstdlib>
#include <cstdio>
#include <cstring>

namespace {

using namespace moss;
using namespace moss::worker;

// Builds the serving parts from the effective configuration (at start-up or at /init).
Result<std::shared_ptr<InferenceService>> make_service(const WorkerConfig& c, Metrics& metrics) {
  attest::ProducerConfig pc;
  pc.kind = c.tee;
  pc.sim_key_file = c.sim_key_file;
  pc.sim_identity = c.sim_identity;
  pc.allow_simulated_fallback = !c.sim_key_file.empty();
  MOSS_ASSIGN_OR_RETURN(attest::EvidenceProducerPtr made, attest::make_producer(pc));
  // Shared by certificate renewal and the key client's per-connection evidence.
  std::shared_ptr<attest::EvidenceProducer> producer = attest::make_shared_producer(std::move(made));
  const std::string producer_name(producer->name());
  // Short-lived, renewed in place for as long as the key client lives.
  attest::AttestedCredentialOptions co;
  co.purpose = kWorkerPurpose;
  co.certificate.common_name = "moss-worker";
  co.certificate.lifetime = c.certificate_lifetime;
  MOSS_ASSIGN_OR_RETURN(net::RenewableCredentialsPtr credentials,
                        attest::make_renewing_attested_credentials(producer, co));

  KeyClientOptions ko;
  ko.url = c.keyservice_url;
  ko.producer = producer;
  MOSS_ASSIGN_OR_RETURN(ko.server.policy, load_keyservice_policy(c.keyservice_policy));
  ko.server.verify.allow_simulated = c.allow_simulated;
  if (c.allow_simulated && !c.sim_key_file.empty()) {
    MOSS_ASSIGN_OR_RETURN(ko.server.verify.sim_platform_key,
                          attest::SimPlatformKey::load_public_key(c.sim_key_file));
  }
  MOSS_ASSIGN_OR_RETURN(auto keys, KeyClient::create(std::move(ko), std::move(credentials)));
  MOSS_ASSIGN_OR_RETURN(auto store, make_model_store(c.model_store, c.max_model_bytes));
  log::get("worker")->info("serving tee={} keyservice={} store={} budget={} concurrency={}",
                           producer_name, c.keyservice_url, store->describe(),
                           c.memory_budget_bytes, c.max_concurrency);
  return std::make_shared<InferenceService>(c, std::move(keys), std::move(store), metrics);
}

int fail(const Status& s) { return exit_with_error("moss-worker", s); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"moss-worker: encrypted inference inside a TEE (OpenWhisk action, /v1/infer)"};
  auto settings = make_worker_config();
  if (!settings.ok()) return fail(settings.status());
  ConfigCommandLine command_line(app, *settings);
  CLI11_PARSE(app, argc, argv);
  auto outcome = load_service_config(command_line, *settings);
  if (!outcome.ok()) return fail(outcome.status());
  if (*outcome == ConfigOutcome::kPrinted) return 0;
  auto config = worker_config_from(*settings);
  if (!config.ok()) return fail(config.status());

  if (const char* t = std::getenv("GLIBC_TUNABLES"); t == nullptr || std::strstr(t, "glibc.malloc.hugetlb") == nullptr) {
    log::get("worker")->info(
        "GLIBC_TUNABLES=glibc.malloc.hugetlb=1 is not set: cold starts of large models pay a page "
        "fault per 4 KiB (docs/worker.md)");
  }

  StopSignals stop_signals;  // before any thread starts

  WorkerApp worker(std::move(settings).value(), make_service);
  if (Status s = worker.configure_if_complete(); !s.ok()) return fail(s);
  if (!worker.configured()) log::get("worker")->info("waiting for /init: {} is not set", config->missing());

  net::ServerOptions so;
  so.host = config->host;
  so.port = config->port;
  so.worker_threads = config->max_concurrency + 2;  // status and metrics answer while busy
  so.max_body_bytes = size_t{64} << 20;
  so.read_timeout = std::chrono::seconds(120);
  so.name = "moss-worker";
  auto server = net::Server::start(std::move(so), worker.router());
  if (!server.ok()) return fail(server.status());
  // The first stdout line tells supervisors and tests the port (useful with --port 0).
  std::printf("moss-worker listening on http://%s:%u (instance %s)\n", config->host.c_str(),
              (*server)->port(), worker.instance_id().c_str());
  std::fflush(stdout);

  const int sig = stop_signals.wait();
  log::get("worker")->info("stopping signal={}", sig);
  (*server)->stop();
  return 0;
}
