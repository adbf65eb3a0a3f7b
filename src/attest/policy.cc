#include "attest/policy.h"

#include "common/file_util.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

namespace moss::attest {
namespace {

using nlohmann::json;

Status only_keys(const json& j, std::initializer_list<const char*> allowed, const char* where) {
  for (const auto& item : j.items()) {
    const std::string& key = item.key();  // a plain reference: clang cannot capture bindings
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }))
      return invalid_argument("policy: unknown key '{}' in {}", key, where);
  }
  return Status::Ok();
}

std::string lower_hex(const json& j, const char* key, size_t bytes) {
  std::string s = j.at(key).get<std::string>();
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s.size() != bytes * 2 || s.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw std::runtime_error(fmt::format("'{}' must be {} hex characters", key, bytes * 2));
  return s;
}

Result<MeasurementRule> parse_rule(const json& j) {
  MeasurementRule r;
  std::string tee = j.at("tee").get<std::string>();
  if (tee == "sgx") {
    MOSS_RETURN_IF_ERROR(only_keys(j, {"tee", "mrenclave", "mrsigner", "product_id", "min_svn"}, "sgx measurement"));
    r.tee = TeeType::kSgx;
    if (j.contains("mrenclave")) r.mrenclave = lower_hex(j, "mrenclave", 32);
    if (j.contains("mrsigner")) {
      r.mrsigner = lower_hex(j, "mrsigner", 32);
      if (!j.contains("product_id")) return invalid_argument("policy: mrsigner needs product_id");
      r.product_id = j.at("product_id").get<uint16_t>();
      r.min_svn = j.value("min_svn", uint16_t{0});
    }
    if (r.mrenclave.empty() == r.mrsigner.empty())
      return invalid_argument("policy: an sgx entry needs exactly one of mrenclave or mrsigner");
  } else if (tee == "tdx") {
    MOSS_RETURN_IF_ERROR(only_keys(j, {"tee", "mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"}, "tdx measurement"));
    r.tee = TeeType::kTdx;
    r.mrtd = lower_hex(j, "mrtd", 48);
    for (int i = 0; i < 4; ++i) {
      std::string key = "rtmr" + std::to_string(i);
      if (j.contains(key)) r.rtmr[i] = lower_hex(j, key.c_str(), 48);
    }
  } else if (tee == "simulated") {
    MOSS_RETURN_IF_ERROR(only_keys(j, {"tee", "measurement"}, "simulated measurement"));
    r.tee = TeeType::kSimulated;
    r.measurement = lower_hex(j, "measurement", 32);
  } else {
    return invalid_argument("policy: unknown tee '{}' (sgx, tdx, simulated)", tee);
  }
  return r;
}

Status parse_tcb(const json& t, Policy& p) {
  MOSS_RETURN_IF_ERROR(only_keys(t, {"accept", "require_collateral", "max_collateral_age_hours"}, "tcb"));
  static const std::set<std::string> kKnown = {
      "UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded",
      "OutOfDate", "OutOfDateConfigurationNeeded", "Unknown"};
  if (t.contains("accept")) {
    p.accept_tcb.clear();
    for (const auto& a : t.at("accept")) {
      TcbStatusRule rule;
      if (a.is_string()) {
        rule.status = a.get<std::string>();
      } else {
        MOSS_RETURN_IF_ERROR(only_keys(a, {"status", "advisory_ids"}, "tcb.accept"));
        rule.status = a.at("status").get<std::string>();
        rule.advisory_ids = a.value("advisory_ids", std::vector<std::string>{});
      }
      if (!kKnown.count(rule.status))
        return invalid_argument("policy: TCB status '{}' unknown (Revoked is never accepted)", rule.status);
      p.accept_tcb.push_back(std::move(rule));
    }
  }
  p.require_collateral = t.value("require_collateral", true);
  if (t.contains("max_collateral_age_hours"))
    p.max_collateral_age_seconds = t.at("max_collateral_age_hours").get<int64_t>() * 3600;
  return Status::Ok();
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
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument("policy: not a JSON object");
  try {
    MOSS_RETURN_IF_ERROR(only_keys(j, {"version", "name", "allow_simulated", "allow_debug", "measurements", "tcb"}, "policy"));
    Policy p;
    if (!j.contains("version")) return invalid_argument("policy: 'version' missing");
    p.version = j.at("version").get<int>();
    if (p.version != kPolicyVersion)
      return unimplemented("policy: version {} not supported ({} is)", p.version, kPolicyVersion);
    p.name = j.value("name", std::string());
    p.allow_simulated = j.value("allow_simulated", false);
    p.allow_debug = j.value("allow_debug", false);
    if (j.contains("measurements")) {
      for (const auto& m : j.at("measurements")) {
        MOSS_ASSIGN_OR_RETURN(auto rule, parse_rule(m));
        p.measurements.push_back(std::move(rule));
      }
    }
    if (j.contains("tcb")) MOSS_RETURN_IF_ERROR(parse_tcb(j.at("tcb"), p));
    return p;
  } catch (const std::exception& e) {
    return invalid_argument("policy: {}", e.what());
  }
}

Result<Policy> Policy::load(const std::filesystem::path& path) {
  MOSS_ASSIGN_OR_RETURN(auto text, read_text_file(path, 1 << 20));
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
