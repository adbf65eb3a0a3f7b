// `moss attest verify` and `moss attest measure`: check TEE evidence from the command line.
#include "apps/moss/command.h"
#include "attest/evidence_verifier.h"
#include "attest/intel_root.h"
#include "common/encoding.h"
#include "common/file_util.h"
#include "common/rfc3339.h"

#include <cstdio>
#include <cstdlib>

namespace moss::cli {
namespace {

struct VerifyArgs {
  std::string quote;
  std::string collateral;
  std::string at;
  std::string policy;
  std::string sim_key;
  std::string report_data;
  bool allow_simulated = false;
};

std::string default_sim_key() {
  if (const char* env = std::getenv("MOSS_SIM_KEY")) return env;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.moss/sim-platform.key";
}

Status run_verify(const VerifyArgs& a) {
  using namespace moss::attest;
  MOSS_ASSIGN_OR_RETURN(auto evidence, read_file(a.quote, kMaxQuoteSize));
  EvidenceVerifyOptions o;
  if (!a.at.empty()) {
    MOSS_ASSIGN_OR_RETURN(o.at, parse_rfc3339(a.at));
  }
  if (!a.collateral.empty()) {
    MOSS_ASSIGN_OR_RETURN(auto root, intel_sgx_root_ca());
    MOSS_ASSIGN_OR_RETURN(o.collateral, load_collateral_dir(a.collateral, root.get()));
  }
  std::optional<Policy> policy;
  if (!a.policy.empty()) {
    MOSS_ASSIGN_OR_RETURN(policy, Policy::load(a.policy));
  }
  o.allow_simulated = a.allow_simulated || (policy && policy->allow_simulated);
  if (o.allow_simulated && looks_like_simulated_evidence(evidence)) {
    MOSS_ASSIGN_OR_RETURN(o.sim_platform_key, SimPlatformKey::load_public_key(a.sim_key));
  }
  MOSS_ASSIGN_OR_RETURN(auto verifier, EvidenceVerifier::create());
  MOSS_ASSIGN_OR_RETURN(Claims claims, verifier.verify(evidence, o));
  std::printf("%s\n", claims_to_json(claims).dump(2).c_str());
  if (!a.report_data.empty()) {
    MOSS_ASSIGN_OR_RETURN(auto rd, hex_decode(a.report_data, 64));
    if (rd.size() != 64) return invalid_argument("--report-data must be 64 bytes of hex");
    MOSS_RETURN_IF_ERROR(check_report_data(claims, std::span<const uint8_t, 64>(rd.data(), 64)));
  }
  if (policy) MOSS_RETURN_IF_ERROR(policy->check(claims));
  return Status::Ok();
}

Status run_measure(const std::string& binary, const std::string& identity) {
  MOSS_ASSIGN_OR_RETURN(auto m, attest::simulated_measurement(binary, identity));
  nlohmann::json j = {{"tee", "simulated"}, {"measurement", hex_encode(m)},
                      {"binary", binary}, {"identity", identity},
                      {"warning", "SIMULATED measurement: no hardware protection"}};
  std::printf("%s\n", j.dump(2).c_str());
  return Status::Ok();
}

}  // namespace

void register_attest_commands(CLI::App& root) {
  CLI::App* attest = root.add_subcommand("attest", "Verify TEE evidence; simulated measurements");
  attest->require_subcommand(1);

  auto args = std::make_shared<VerifyArgs>();
  args->sim_key = default_sim_key();
  CLI::App* verify = attest->add_subcommand(
      "verify", "Verify a DCAP quote or simulated evidence; print its claims as JSON");
  verify->add_option("--quote", args->quote, "Evidence file (DCAP quote or simulated evidence)")->required();
  verify->add_option("--collateral", args->collateral,
                     "Collateral directory (tcb_info.json, qe_identity.json, tcb_signing_chain.pem, CRLs)");
  verify->add_option("--at", args->at, "Verification time, RFC 3339 UTC (default: now)");
  verify->add_option("--policy", args->policy, "Policy file (JSON, version 1); exit non-zero if not met");
  verify->add_option("--report-data", args->report_data, "Expected report data (128 hex characters)");
  verify->add_flag("--allow-simulated", args->allow_simulated, "Accept simulated evidence (NOT secure)");
  verify->add_option("--sim-key", args->sim_key, "Simulated platform key file")->capture_default_str();
  bind(verify, [args] { return run_verify(*args); });

  auto binary = std::make_shared<std::string>("/proc/self/exe");
  auto identity = std::make_shared<std::string>();
  CLI::App* measure = attest->add_subcommand("measure", "Print the simulated measurement of a binary");
  measure->add_option("--binary", *binary, "Binary to measure")->capture_default_str();
  measure->add_option("--identity", *identity, "Identity string mixed into the measurement");
  bind(measure, [binary, identity] { return run_measure(*binary, *identity); });
}

}  // namespace moss::cli
