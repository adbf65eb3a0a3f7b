// The `tsm` producer: Linux configfs-tsm reports (TDX and SEV-SNP guests).
#include "attest/evidence_producer.h"
#include "common/file_util.h"
#include "common/logging.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace moss::attest {
namespace {

constexpr size_t kMaxBlob = 64 * 1024;
std::atomic<unsigned> g_entry_counter{0};

class TsmProducer final : public EvidenceProducer {
 public:
  TsmProducer(std::filesystem::path dir, std::string entry)
      : dir_(std::move(dir)), entry_(std::move(entry)) {}
  std::string_view name() const override { return "tsm"; }

  Result<Evidence> produce(std::span<const uint8_t, 64> report_data) override {
    std::string name = entry_.empty()
        ? fmt::format("moss-{}-{}", ::getpid(), g_entry_counter.fetch_add(1)) : entry_;
    std::filesystem::path entry = dir_ / name;
    // An existing entry is reused (configfs keeps it until rmdir); any other failure is fatal.
    if (::mkdir(entry.c_str(), 0700) != 0 && errno != EEXIST)
      return unavailable("tsm: mkdir {}: {}", entry.string(), std::strerror(errno));
    auto result = run(entry, report_data);
    // configfs removes the attribute files with the directory; an imitation may refuse.
    if (::rmdir(entry.c_str()) != 0)
      log::get("attest")->debug("tsm rmdir={} errno={}", entry.string(), errno);
    return result;
  }

 private:
  Result<Evidence> run(const std::filesystem::path& entry, std::span<const uint8_t, 64> report_data) {
    MOSS_RETURN_IF_ERROR(write_special_file(entry / "inblob", report_data));
    auto generation_before = read_generation(entry);
    Evidence ev;
    ev.producer = "tsm";
    MOSS_ASSIGN_OR_RETURN(ev.bytes, read_file(entry / "outblob", kMaxBlob));
    if (ev.bytes.empty()) return unavailable("tsm: {} is empty", (entry / "outblob").string());
    MOSS_ASSIGN_OR_RETURN(std::string provider, read_text_file(entry / "provider", 256));
    while (!provider.empty() && (provider.back() == '\n' || provider.back() == '\0')) provider.pop_back();
    ev.provider = provider;
    std::error_code ec;
    if (std::filesystem::exists(entry / "auxblob", ec)) {
      MOSS_ASSIGN_OR_RETURN(ev.aux, read_file(entry / "auxblob", kMaxBlob));
    }
    // Another writer between our inblob and outblob would give us someone else's report.
    if (read_generation(entry) != generation_before)
      return unavailable("tsm: report entry changed while reading (concurrent writer)");
    return ev;
  }

  static std::string read_generation(const std::filesystem::path& entry) {
    auto g = read_text_file(entry / "generation", 64);
    return g.ok() ? *g : std::string();
  }

  std::filesystem::path dir_;
  std::string entry_;
};

}  // namespace

Result<EvidenceProducerPtr> make_tsm_producer(const ProducerConfig& config) {
  std::error_code ec;
  if (!std::filesystem::is_directory(config.tsm_dir, ec))
    return failed_precondition("tsm: {} not found (no configfs-tsm in this guest?)",
                               config.tsm_dir.string());
  return EvidenceProducerPtr(std::make_unique<TsmProducer>(config.tsm_dir, config.tsm_entry));
}

}  // namespace moss::attest
