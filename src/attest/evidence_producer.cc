#include "attest/evidence_producer.h"

#include "common/logging.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

namespace moss::attest {
namespace {

class SerializedProducer final : public EvidenceProducer {
 public:
  explicit SerializedProducer(EvidenceProducerPtr inner) : inner_(std::move(inner)) {}
  std::string_view name() const override { return inner_->name(); }
  Result<Evidence> produce(std::span<const uint8_t, 64> report_data) override {
    std::lock_guard lock(mu_);
    return inner_->produce(report_data);
  }

 private:
  std::mutex mu_;
  EvidenceProducerPtr inner_;
};

}  // namespace

std::shared_ptr<EvidenceProducer> make_shared_producer(EvidenceProducerPtr producer) {
  return std::make_shared<SerializedProducer>(std::move(producer));
}

Status write_special_file(const std::filesystem::path& path, std::span<const uint8_t> bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_CREAT, 0600);
  if (fd < 0) return unavailable("opening {}: {}", path.string(), std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      return unavailable("writing {}: {}", path.string(), std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) return unavailable("closing {}: {}", path.string(), std::strerror(errno));
  return Status::Ok();
}

Result<EvidenceProducerPtr> make_producer(const ProducerConfig& config) {
  if (config.kind == "sim") return make_sim_producer(config);
  if (config.kind == "sgx-gramine") return make_gramine_producer(config);
  if (config.kind == "tsm") return make_tsm_producer(config);
  if (config.kind != "auto")
    return invalid_argument("unknown evidence producer '{}' (auto, sim, sgx-gramine, tsm)", config.kind);
  std::error_code ec;
  if (std::filesystem::exists(config.gramine_dir / "quote", ec)) return make_gramine_producer(config);
  if (std::filesystem::is_directory(config.tsm_dir, ec)) return make_tsm_producer(config);
  if (!config.allow_simulated_fallback)
    return failed_precondition("no TEE found ({} and {} absent) and simulated evidence not enabled",
                               (config.gramine_dir / "quote").string(), config.tsm_dir.string());
  log::get("attest")->warn("producer=sim reason=no-tee-found evidence=SIMULATED");
  return make_sim_producer(config);
}

}  // namespace moss::attest
