#include "attest/policy.h"

#include "common/file_util.h"
#include "common/strict_json.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

namespace moss::attest {
namespace {

using Json = nlohmann::ordered_json;

// Bounds for an untrusted policy document: far above any real one.
constexpr size_t kMaxPolicyBytes = 1 << 20;
constexpr size_t kMaxMeasurements = 4096;
constexpr size_t kMaxTcbRules = 64;
constexpr size_t kMaxAdvisories = 1024;
constexpr size_t kMaxNameBytes = 256;

// `bytes` bytes as hex (either case in the file; lowercase in the policy).
Result<std::string> lower_hex(const Json& j, std::string_view key, size_t bytes) {
  auto text = string_field(j, key, bytes * 2);
  std::string s = text.ok() ? std::move(text).value() : std::string();
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s.size() != bytes * 2 || s.find_first_not_of("0123456789abcdef") != std::string::npos)
    return invalid_argument("field '{}' must be {} hex characters", key, bytes * 2);
  return s;
}

Result<MeasurementRule> parse_rule(const Json& j) {
  MeasurementRule r;
  if (!j.is_object()) return invalid_argument("a measurement must be an object");
  MOSS_ASSIGN_OR_RETURN(std::string tee, string_field(j, "tee", 16));
  if (tee == "sgx") {
    MOSS_RETURN_IF_ERROR(check_object_keys(j, {"tee"}, {"mrenclave", "mrsigner", "product_id", "min_svn"})
                             .with_context("sgx measurement"));
    r.tee = TeeType::kSgx;
    if (j.contains("mrenclave")) {
      MOSS_ASSIGN_OR_RETURN(r.mrenclave, lower_hex(j, "mrenclave", 32));
    }
    if (j.contains("mrsigner")) {
      MOSS_ASSIGN_OR_RETURN(r.mrsigner, lower_hex(j, "mrsigner", 32));
      if (!j.contains("product_id")) return invalid_argument("mrsigner needs product_id");
      // ISVPRODID and ISVSVN are 16-bit: a larger number would silently wrap to another one.
      MOSS_ASSIGN_OR_RETURN(r.product_id, integer_field(j, "product_id", 0, UINT16_MAX));
      MOSS_ASSIGN_OR_RETURN(r.min_svn, integer_field_or(j, "min_svn", 0, UINT16_MAX, 0));
    } else if (j.contains("product_id") || j.contains("min_svn")) {
      return invalid_argument("product_id and min_svn belong to an mrsigner entry");
    }
    if (r.mrenclave.empty() == r.mrsigner.empty())
      return invalid_argument("an sgx entry needs exactly one of mrenclave or mrsigner");
  } else if (tee == "tdx") {
    MOSS_RETURN_IF_ERROR(check_object_keys(j, {"tee", "mrtd"}, {"rtmr0", "rtmr1", "rtmr2", "rtmr3"})
                             .with_context("tdx measurement"));
    r.tee = TeeType::kTdx;
    MOSS_ASSIGN_OR_RETURN(r.mrtd, lower_hex(j, "mrtd", 48));
    for (int i = 0; i < 4; ++i) {
      std::string key = "rtmr" + std::to_string(i);
      if (j.contains(key)) {
        MOSS_ASSIGN_OR_RETURN(r.rtmr[i], lower_hex(j, key, 48));
      }
    }
  } else if (tee == "simulated") {
    MOSS_RETURN_IF_ERROR(check_object_keys(j, {"tee", "measurement"}).with_context("simulated measurement"));
    r.tee = TeeType::kSimulated;
    MOSS_ASSIGN_OR_RETURN(r.measurement, lower_hex(j, "measurement", 32));
  } else {
    return invalid_argument("unknown tee {} (sgx, tdx, simulated)", quote_input_name(tee));
  }
  return r;
}

Result<TcbStatusRule> parse_tcb_rule(const Json& a) {
  static const std::set<std::string, std::less<>> kKnown = {
      "UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded",
      "OutOfDate", "OutOfDateConfigurationNeeded", "Unknown"};
  TcbStatusRule rule;
  if (a.is_string()) {
    rule.status = a.get<std::string>();
  } else {
    MOSS_RETURN_IF_ERROR(check_object_keys(a, {"status"}, {"advisory_ids"}).with_context("tcb.accept"));
    MOSS_ASSIGN_OR_RETURN(rule.status, string_field(a, "status", 64));
    if (a.contains("advisory_ids")) {
      MOSS_ASSIGN_OR_RETURN(const Json* ids, array_field(a, "advisory_ids", kMaxAdvisories));
      for (const Json& id : *ids) {
        if (!id.is_string() || id.get_ref<const std::string&>().size() > 64)
          return invalid_argument("tcb.accept: advisory ids must be strings of at most 64 bytes");
        rule.advisory_ids.push_back(id.get<std::string>());
      }
    }
  }
  if (!kKnown.count(rule.status))
    return invalid_argument("TCB status {} unknown (Revoked is never accepted)", quote_input_name(rule.status));
  return rule;
}

Status parse_tcb(const Json& t, Policy& p) {
  MOSS_RETURN_IF_ERROR(check_object_keys(t, {}, {"accept", "require_collateral", "max_collateral_age_hours"})
                           .with_context("tcb"));
  if (t.contains("accept")) {
    p.accept_tcb.clear();
    MOSS_ASSIGN_OR_RETURN(const Json* accept, array_field(t, "accept", kMaxTcbRules));
    for (const Json& a : *accept) {
      MOSS_ASSIGN_OR_RETURN(auto rule, parse_tcb_rule(a));
      p.accept_tcb.push_back(std::move(rule));
    }
  }
  MOSS_ASSIGN_OR_RETURN(p.require_collateral, bool_field_or(t, "require_collateral", true));
  if (t.contains("max_collateral_age_hours")) {
    MOSS_ASSIGN_OR_RETURN(int64_t hours, integer_field(t, "max_collateral_age_hours", 0, 24 * 366 * 10));
    p.max_collateral_age_seconds = hours * 3600;
  }
  return Status::Ok();
}

Result<Policy> parse_policy(const Json& j) {
  MOSS_RETURN_IF_ERROR(check_object_keys(j, {"version"},
                                         {"name", "allow_simulated", "allow_debug", "measurements", "tcb"}));
  Policy p;
  MOSS_ASSIGN_OR_RETURN(int64_t version, integer_field(j, "version", 0, INT32_MAX));
  if (version != kPolicyVersion)
    return unimplemented("version {} not supported ({} is)", version, kPolicyVersion);
  p.version = static_cast<int>(version);
  MOSS_ASSIGN_OR_RETURN(p.name, string_field_or(j, "name", kMaxNameBytes, ""));
  MOSS_ASSIGN_OR_RETURN(p.allow_simulated, bool_field_or(j, "allow_simulated", false));
  MOSS_ASSIGN_OR_RETURN(p.allow_debug, bool_field_or(j, "allow_debug", false));
  if (j.contains("measurements")) {
    MOSS_ASSIGN_OR_RETURN(const Json* measurements, array_field(j, "measurements", kMaxMeasurements));
    for (const Json& m : *measurements) {
      MOSS_ASSIGN_OR_RETURN(auto rule, parse_rule(m));
      p.measurements.push_back(std::move(rule));
    }
  }
  if (j.contains("tcb")) {
    MOSS_ASSIGN_OR_RETURN(const Json* tcb, object_field(j, "tcb", 8));
    MOSS_RETURN_IF_ERROR(parse_tcb(*tcb, p));
  }
  return p;
}

bool matches(const MeasurementRule& r, const Claims& c) {
  if (r.tee != c.tee) return false;
  switch (r.tee) {
    case TeeType::kSgx:
      if (!r.mrenclave.empty()) return r.mrenclave == c.measurement;
      return r.mrsigner == c.mr_signer && r.product_id == c.product_id && c.svn >= r.min_svn;
    case TeeType::kTdx:
      if (r.mrtd != c.measurement) return false;
      for (int i = 0; i < 4; ++i)
        if (!r.rtmr[i].empty() && r.rtmr[i] != c.rtmr[i]) return false;
      return true;
    case TeeType::kSimulated:
      return r.measurement == c.measurement;
  }
  return false;
}

std::string describe(const Claims& c) {
  switch (c.tee) {
    case TeeType::kSgx:
      return fmt::format("sgx mrenclave {} (mrsigner {}, product {}, svn {})", c.measurement,
                         c.mr_signer, c.product_id, c.svn);
    case TeeType::kTdx: return fmt::format("tdx mrtd {}", c.measurement);
    case TeeType::kSimulated: return fmt::format("simulated measurement {}", c.measurement);
  }
  return "?";
}

Status check_tcb(const Policy& p, const Claims& c) {
  for (const auto& rule : p.accept_tcb) {
    if (rule.status != c.tcb_status) continue;
    bool covered = std::all_of(c.advisory_ids.begin(), c.advisory_ids.end(), [&](const std::string& a) {
      return rule.advisory_ids.empty() ||
             std::find(rule.advisory_ids.begin(), rule.advisory_ids.end(), a) != rule.advisory_ids.end();
    });
    if (covered) return Status::Ok();
  }
  std::string advisories;
  for (const auto& a : c.advisory_ids) advisories += (advisories.empty() ? "" : ", ") + a;
  if (advisories.empty()) return permission_denied("tcb-status: {} not accepted", c.tcb_status);
  return permission_denied("tcb-status: {} ({}) not accepted", c.tcb_status, advisories);
}

}  // namespace

Result<Policy> Policy::parse(std::string_view text) {
  if (text.size() > kMaxPolicyBytes) return invalid_argument("policy: larger than {} bytes", kMaxPolicyBytes);
  MOSS_ASSIGN_OR_RETURN(Json j, parse_json_strict(text, "policy", 8));
  auto p = parse_policy(j);
  if (!p.ok()) return std::move(p).status().with_context("policy");
  return p;
}

Result<Policy> Policy::load(const std::filesystem::path& path) {
  MOSS_ASSIGN_OR_RETURN(auto text, read_text_file(path, kMaxPolicyBytes));
  auto p = parse(text);
  if (!p.ok()) return p.status().with_context(path.string());
  return p;
}

Status Policy::check(const Claims& c) const {
  if (c.simulated() && !allow_simulated)
    return permission_denied("simulated: simulated evidence not allowed by policy");
  if (std::none_of(measurements.begin(), measurements.end(), [&](const auto& r) { return matches(r, c); }))
    return permission_denied("measurement: {} not allowed", describe(c));
  if (c.debug && !allow_debug) return permission_denied("debug: debug {} refused", c.tee == TeeType::kTdx ? "TD" : "enclave");
  if (c.simulated()) return Status::Ok();  // no TCB to judge; allowed explicitly above
  if (require_collateral && !(c.tcb_info_checked && c.qe_identity_checked && c.crls_checked))
    return permission_denied("collateral: TCB info, QE identity and CRLs are required (checked: {}{}{})",
                             c.tcb_info_checked ? "tcb-info " : "", c.qe_identity_checked ? "qe-identity " : "",
                             c.crls_checked ? "crls" : "");
  if (max_collateral_age_seconds && c.tcb_info_issue_date &&
      c.verified_at - *c.tcb_info_issue_date > *max_collateral_age_seconds)
    return permission_denied("collateral-age: TCB info is {} hours old, the limit is {}",
                             (c.verified_at - *c.tcb_info_issue_date) / 3600, *max_collateral_age_seconds / 3600);
  return check_tcb(*this, c);
}

}  // namespace moss::attest
