// The `sgx-gramine` producer: Gramine's /dev/attestation pseudo-files.
#include "attest/evidence_producer.h"
#include "attest/quote.h"
#include "common/file_util.h"

namespace moss::attest {
namespace {

class GramineProducer final : public EvidenceProducer {
 public:
  explicit GramineProducer(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::string_view name() const override { return "sgx-gramine"; }
  Result<Evidence> produce(std::span<const uint8_t, 64> report_data) override {
    // Gramine regenerates the quote when user_report_data is written; reading `quote` returns it.
    MOSS_RETURN_IF_ERROR(write_special_file(dir_ / "user_report_data", report_data));
    Evidence ev;
    ev.producer = "sgx-gramine";
    ev.provider = "sgx";
    MOSS_ASSIGN_OR_RETURN(ev.bytes, read_file(dir_ / "quote", kMaxQuoteSize));
    return ev;
  }

 private:
  std::filesystem::path dir_;
};

}  // namespace

Result<EvidenceProducerPtr> make_gramine_producer(const ProducerConfig& config) {
  std::error_code ec;
  if (!std::filesystem::exists(config.gramine_dir / "quote", ec))
    return failed_precondition("sgx-gramine: {} not found (not running under Gramine with DCAP?)",
                               (config.gramine_dir / "quote").string());
  return EvidenceProducerPtr(std::make_unique<GramineProducer>(config.gramine_dir));
}

}  // namespace moss::attest
