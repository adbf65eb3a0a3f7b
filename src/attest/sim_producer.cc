// The `sim` producer: simulated evidence (see simulated.h).
#include "attest/evidence_producer.h"
#include "attest/simulated.h"

namespace moss::attest {
namespace {

class SimProducer final : public EvidenceProducer {
 public:
  SimProducer(SimPlatformKey key, std::array<uint8_t, 32> measurement, std::string identity)
      : key_(std::move(key)), measurement_(measurement), identity_(std::move(identity)) {}
  std::string_view name() const override { return "sim"; }
  Result<Evidence> produce(std::span<const uint8_t, 64> report_data) override {
    Evidence ev;
    ev.producer = "sim";
    ev.provider = "simulated";
    MOSS_ASSIGN_OR_RETURN(ev.bytes, key_.sign_evidence(measurement_, report_data, identity_));
    return ev;
  }

 private:
  SimPlatformKey key_;
  std::array<uint8_t, 32> measurement_;
  std::string identity_;
};

}  // namespace

Result<EvidenceProducerPtr> make_sim_producer(const ProducerConfig& config) {
  if (config.sim_key_file.empty()) return invalid_argument("sim producer needs sim_key_file");
  MOSS_ASSIGN_OR_RETURN(auto key, SimPlatformKey::load_or_create(config.sim_key_file));
  MOSS_ASSIGN_OR_RETURN(auto measurement, simulated_measurement(config.sim_binary, config.sim_identity));
  return EvidenceProducerPtr(std::make_unique<SimProducer>(std::move(key), measurement, config.sim_identity));
}

}  // namespace moss::attest
