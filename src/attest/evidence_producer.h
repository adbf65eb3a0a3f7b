// Evidence producers: one interface, three implementations, chosen by configuration.
//
//   sim          no hardware; see simulated.h. Labelled "simulated" everywhere.
//   sgx-gramine  under Gramine: write report data to <gramine_dir>/user_report_data, read the
//                DCAP quote from <gramine_dir>/quote (default /dev/attestation).
//   tsm          Linux configfs-tsm (TDX, SEV-SNP guests): mkdir <tsm_dir>/<entry>, write inblob,
//                read outblob, provider and auxblob, rmdir (default /sys/kernel/config/tsm/report).
//   auto         sgx-gramine if <gramine_dir>/quote exists, else tsm if <tsm_dir> exists, else sim
//                only when allow_simulated_fallback is set (otherwise an error).
// The directories are configurable so tests can point them at files that imitate the real ones.
#pragma once

#include "common/status.h"

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace moss::attest {

struct Evidence {
  std::string producer;        // "sim", "sgx-gramine" or "tsm"
  std::string provider;        // tsm only: "tdx_guest", "sev_guest", ...
  std::vector<uint8_t> bytes;  // the quote, report or simulated evidence
  std::vector<uint8_t> aux;    // tsm auxblob (SEV-SNP certificates), may be empty
};

// Not thread-safe: a producer writes report data then reads the evidence; callers serialise.
class EvidenceProducer {
 public:
  virtual ~EvidenceProducer() = default;
  virtual std::string_view name() const = 0;
  // Evidence whose report data is exactly `report_data`.
  virtual Result<Evidence> produce(std::span<const uint8_t, 64> report_data) = 0;
};
using EvidenceProducerPtr = std::unique_ptr<EvidenceProducer>;

struct ProducerConfig {
  std::string kind = "auto";  // auto, sim, sgx-gramine, tsm
  std::filesystem::path gramine_dir = "/dev/attestation";
  std::filesystem::path tsm_dir = "/sys/kernel/config/tsm/report";
  std::string tsm_entry;  // empty: "moss-<pid>-<n>"
  std::filesystem::path sim_key_file;  // required for sim
  std::filesystem::path sim_binary = "/proc/self/exe";
  std::string sim_identity;
  bool allow_simulated_fallback = false;
};

Result<EvidenceProducerPtr> make_producer(const ProducerConfig& config);

// `producer` behind a mutex, for sharing by several threads (e.g. certificate renewal and the
// per-connection attestation hook; attest/connection_attestation.h). Thread-safe.
std::shared_ptr<EvidenceProducer> make_shared_producer(EvidenceProducerPtr producer);

Result<EvidenceProducerPtr> make_sim_producer(const ProducerConfig& config);
Result<EvidenceProducerPtr> make_gramine_producer(const ProducerConfig& config);
Result<EvidenceProducerPtr> make_tsm_producer(const ProducerConfig& config);

// Writes `bytes` to an existing special file in place (no temporary file and rename, which
// /dev/attestation and configfs do not support).
Status write_special_file(const std::filesystem::path& path, std::span<const uint8_t> bytes);

}  // namespace moss::attest
