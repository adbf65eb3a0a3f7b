#include "attest/collateral.h"

#include "common/file_util.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

namespace moss::attest {
namespace {

using nlohmann::json;
constexpr size_t kMaxJsonBytes = 256 * 1024;
constexpr size_t kMaxCrlBytes = 1024 * 1024;
constexpr size_t kMaxLevels = 256;

// The exact text of the top-level member `key` of a JSON object: the signature covers those
// bytes, so re-serialising the parsed value would not do. Strings and nesting are honoured.
Result<std::string_view> raw_member(std::string_view text, std::string_view key) {
  size_t i = 0;
  auto ws = [&] { while (i < text.size() && std::strchr(" \t\r\n", text[i]) && text[i]) ++i; };
  auto skip_string = [&]() -> bool {  // precondition: text[i] == '"'
    for (++i; i < text.size(); ++i) {
      if (text[i] == '\\') ++i;
      else if (text[i] == '"') { ++i; return true; }
    }
    return false;
  };
  ws();
  if (i >= text.size() || text[i] != '{') return invalid_argument("JSON document is not an object");
  ++i;
  while (true) {
    ws();
    if (i >= text.size() || text[i] != '"') return not_found("member '{}' not found", key);
    size_t key_start = i + 1;
    if (!skip_string()) return invalid_argument("unterminated JSON string");
    std::string_view name = text.substr(key_start, i - 1 - key_start);
    ws();
    if (i >= text.size() || text[i] != ':') return invalid_argument("malformed JSON object");
    ++i;
    ws();
    size_t value_start = i;
    int depth = 0;
    for (; i < text.size(); ++i) {
      char c = text[i];
      if (c == '"') {
        if (!skip_string()) return invalid_argument("unterminated JSON string");
        --i;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (depth == 0) break;
        --depth;
      } else if (c == ',' && depth == 0) {
        break;
      }
    }
    if (i >= text.size()) return invalid_argument("truncated JSON document");
    size_t value_end = i;
    while (value_end > value_start && std::strchr(" \t\r\n", text[value_end - 1])) --value_end;
    if (name == key) return text.substr(value_start, value_end - value_start);
    if (text[i] == '}') return not_found("member '{}' not found", key);
    ++i;  // the comma
  }
}

template <size_t N>
std::array<uint8_t, N> hex_array(const json& j, const char* name) {
  auto bytes = ossl::from_hex(j.at(name).get<std::string>());
  if (!bytes.ok() || bytes->size() != N)
    throw std::runtime_error(fmt::format("'{}' must be {} hex bytes", name, N));
  std::array<uint8_t, N> out{};
  std::memcpy(out.data(), bytes->data(), N);
  return out;
}

std::time_t json_time(const json& j, const char* name) {
  auto t = ossl::parse_rfc3339(j.at(name).get<std::string>());
  if (!t.ok()) throw std::runtime_error(t.status().message());
  return *t;
}

std::vector<std::string> advisories(const json& level) {
  if (!level.contains("advisoryIDs")) return {};
  return level.at("advisoryIDs").get<std::vector<std::string>>();
}

std::array<uint8_t, 16> components(const json& arr) {
  if (!arr.is_array() || arr.size() != 16) throw std::runtime_error("TCB components must be 16");
  std::array<uint8_t, 16> out{};
  for (size_t i = 0; i < 16; ++i) {
    int svn = arr[i].at("svn").get<int>();
    if (svn < 0 || svn > 255) throw std::runtime_error("TCB component SVN out of range");
    out[i] = static_cast<uint8_t>(svn);
  }
  return out;
}

std::vector<IsvTcbLevel> isv_levels(const json& arr) {
  if (!arr.is_array() || arr.size() > kMaxLevels) throw std::runtime_error("bad tcbLevels");
  std::vector<IsvTcbLevel> out;
  for (const auto& l : arr) {
    int svn = l.at("tcb").at("isvsvn").get<int>();
    if (svn < 0 || svn > 0xFFFF) throw std::runtime_error("isvsvn out of range");
    out.push_back({static_cast<uint16_t>(svn), l.at("tcbStatus").get<std::string>(), advisories(l)});
  }
  return out;
}

TdxModuleIdentity module_identity(const json& j) {
  TdxModuleIdentity m;
  if (j.contains("id")) m.id = j.at("id").get<std::string>();
  auto signer = ossl::from_hex(j.at("mrsigner").get<std::string>());
  if (!signer.ok() || signer->size() != 48) throw std::runtime_error("bad TDX module mrsigner");
  m.mr_signer = *signer;
  m.attributes = hex_array<8>(j, "attributes");
  m.attributes_mask = hex_array<8>(j, "attributesMask");
  if (j.contains("tcbLevels")) m.levels = isv_levels(j.at("tcbLevels"));
  return m;
}

// Splits a PCS body into its signed member text and the signature, and checks the signature.
Result<json> signed_body(std::string_view text, std::string_view member, EVP_PKEY* signer) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return invalid_argument("{}: not JSON", member);
  if (!doc.contains(member) || !doc.contains("signature") || !doc["signature"].is_string())
    return invalid_argument("{}: missing '{}' or 'signature'", member, member);
  MOSS_ASSIGN_OR_RETURN(auto raw, raw_member(text, member));
  auto sig = ossl::from_hex(doc["signature"].get<std::string>());
  if (!sig.ok() || sig->size() != 64) return invalid_argument("{}: signature is not 64 hex bytes", member);
  std::span<const uint8_t> msg(reinterpret_cast<const uint8_t*>(raw.data()), raw.size());
  Status st = ossl::verify_ecdsa_raw(signer, msg, *sig);
  if (!st.ok()) return unauthenticated("{}-signature: does not verify with the TCB signing key", member);
  return doc[std::string(member)];
}

}  // namespace

Result<TcbInfo> parse_tcb_info(std::string_view text, EVP_PKEY* signer) {
  MOSS_ASSIGN_OR_RETURN(json j, signed_body(text, "tcbInfo", signer));
  try {
    TcbInfo t;
    t.id = j.at("id").get<std::string>();
    t.version = j.at("version").get<int>();
    if (t.version != 3) return unimplemented("TCB info version {} not supported (3 is)", t.version);
    if (t.id != "SGX" && t.id != "TDX") return invalid_argument("TCB info id '{}' unknown", t.id);
    t.issue_date = json_time(j, "issueDate");
    t.next_update = json_time(j, "nextUpdate");
    t.fmspc = hex_array<6>(j, "fmspc");
    t.pce_id = hex_array<2>(j, "pceId");
    const json& levels = j.at("tcbLevels");
    if (!levels.is_array() || levels.size() > kMaxLevels) return invalid_argument("bad tcbLevels");
    for (const auto& l : levels) {
      TcbLevel level;
      const json& tcb = l.at("tcb");
      level.sgx_components = components(tcb.at("sgxtcbcomponents"));
      if (tcb.contains("tdxtcbcomponents")) {
        level.tdx_components = components(tcb.at("tdxtcbcomponents"));
        level.has_tdx_components = true;
      }
      int pce = tcb.at("pcesvn").get<int>();
      if (pce < 0 || pce > 0xFFFF) return invalid_argument("pcesvn out of range");
      level.pce_svn = static_cast<uint16_t>(pce);
      level.status = l.at("tcbStatus").get<std::string>();
      level.advisory_ids = advisories(l);
      t.levels.push_back(std::move(level));
    }
    if (j.contains("tdxModule")) t.tdx_module = module_identity(j.at("tdxModule"));
    if (j.contains("tdxModuleIdentities")) {
      const json& ids = j.at("tdxModuleIdentities");
      if (!ids.is_array() || ids.size() > kMaxLevels) return invalid_argument("bad tdxModuleIdentities");
      for (const auto& m : ids) t.tdx_module_identities.push_back(module_identity(m));
    }
    return t;
  } catch (const std::exception& e) {
    return invalid_argument("TCB info: {}", e.what());
  }
}

Result<QeIdentity> parse_qe_identity(std::string_view text, EVP_PKEY* signer) {
  MOSS_ASSIGN_OR_RETURN(json j, signed_body(text, "enclaveIdentity", signer));
  try {
    QeIdentity q;
    q.id = j.at("id").get<std::string>();
    int version = j.at("version").get<int>();
    if (version != 2) return unimplemented("QE identity version {} not supported (2 is)", version);
    q.issue_date = json_time(j, "issueDate");
    q.next_update = json_time(j, "nextUpdate");
    auto misc = hex_array<4>(j, "miscselect");
    auto misc_mask = hex_array<4>(j, "miscselectMask");
    // The JSON shows miscselect big-endian; the report holds it little-endian as a number.
    q.misc_select = static_cast<uint32_t>(misc[0]) << 24 | misc[1] << 16 | misc[2] << 8 | misc[3];
    q.misc_select_mask = static_cast<uint32_t>(misc_mask[0]) << 24 | misc_mask[1] << 16 |
                         misc_mask[2] << 8 | misc_mask[3];
    q.attributes = hex_array<16>(j, "attributes");
    q.attributes_mask = hex_array<16>(j, "attributesMask");
    q.mr_signer = hex_array<32>(j, "mrsigner");
    int prod = j.at("isvprodid").get<int>();
    if (prod < 0 || prod > 0xFFFF) return invalid_argument("isvprodid out of range");
    q.isv_prod_id = static_cast<uint16_t>(prod);
    q.levels = isv_levels(j.at("tcbLevels"));
    return q;
  } catch (const std::exception& e) {
    return invalid_argument("QE identity: {}", e.what());
  }
}

Result<CollateralPtr> load_collateral_dir(const std::filesystem::path& dir, X509* root) {
  auto c = std::make_shared<Collateral>();
  auto exists = [&](const char* name) { return std::filesystem::exists(dir / name); };
  auto context = [&](const char* name) { return fmt::format("collateral {}", (dir / name).string()); };
  if (exists("tcb_signing_chain.pem")) {
    MOSS_ASSIGN_OR_RETURN(auto pem, read_text_file(dir / "tcb_signing_chain.pem", kMaxJsonBytes));
    auto chain = ossl::parse_pem_chain(pem);
    if (!chain.ok()) return chain.status().with_context(context("tcb_signing_chain.pem"));
    c->tcb_signing_chain = std::move(chain).value();
    // Signatures only here; validity at the verification time is checked per quote.
    std::vector<X509*> untrusted;
    for (size_t i = 1; i < c->tcb_signing_chain.size(); ++i) untrusted.push_back(c->tcb_signing_chain[i].get());
    X509* leaf = c->tcb_signing_chain[0].get();
    auto not_before = ossl::asn1_time_to_unix(X509_get0_notBefore(leaf));
    if (!not_before.ok()) return not_before.status();
    Status st = ossl::verify_chain(leaf, untrusted, root, {}, *not_before + 1);
    if (!st.ok()) return unauthenticated("tcb-signing-chain: {}", st.message());
  }
  EVP_PKEY* signer = c->tcb_signing_chain.empty() ? nullptr
                                                  : X509_get0_pubkey(c->tcb_signing_chain[0].get());
  for (const char* name : {"tcb_info.json", "qe_identity.json"}) {
    if (!exists(name)) continue;
    if (!signer) return invalid_argument("{}: needs tcb_signing_chain.pem", context(name));
    MOSS_ASSIGN_OR_RETURN(auto text, read_text_file(dir / name, kMaxJsonBytes));
    if (std::string_view(name) == "tcb_info.json") {
      auto t = parse_tcb_info(text, signer);
      if (!t.ok()) return t.status().with_context(context(name));
      c->tcb_info = std::move(t).value();
    } else {
      auto q = parse_qe_identity(text, signer);
      if (!q.ok()) return q.status().with_context(context(name));
      c->qe_identity = std::move(q).value();
    }
  }
  for (auto [name, slot] : {std::pair{"root_ca_crl.der", &c->root_crl}, {"pck_crl.der", &c->pck_crl}}) {
    if (!exists(name)) continue;
    MOSS_ASSIGN_OR_RETURN(auto der, read_file(dir / name, kMaxCrlBytes));
    auto crl = ossl::parse_der_crl(der);
    if (!crl.ok()) return crl.status().with_context(context(name));
    *slot = std::move(crl).value();
  }
  if (static_cast<bool>(c->root_crl) != static_cast<bool>(c->pck_crl))
    return invalid_argument("collateral {}: root_ca_crl.der and pck_crl.der go together", dir.string());
  return CollateralPtr(std::move(c));
}

std::optional<std::time_t> collateral_next_update(const Collateral& c) {
  std::optional<std::time_t> out;
  auto take = [&](std::time_t t) { out = out ? std::min(*out, t) : t; };
  if (c.tcb_info) take(c.tcb_info->next_update);
  if (c.qe_identity) take(c.qe_identity->next_update);
  for (X509_CRL* crl : {c.root_crl.get(), c.pck_crl.get()}) {
    if (!crl || !X509_CRL_get0_nextUpdate(crl)) continue;
    auto t = ossl::asn1_time_to_unix(X509_CRL_get0_nextUpdate(crl));
    if (t.ok()) take(*t);
  }
  return out;
}

void CollateralCache::put(CollateralPtr collateral) {
  if (!collateral || !collateral->tcb_info) return;  // keyed by TCB info's type and FMSPC
  std::string key = collateral->tcb_info->id + "/" + ossl::to_hex(collateral->tcb_info->fmspc);
  std::lock_guard lock(mutex_);
  entries_[key] = std::move(collateral);
}

CollateralPtr CollateralCache::find(std::string_view tee, std::string_view fmspc_hex,
                                    std::time_t at) const {
  std::string key = fmt::format("{}/{}", tee, fmspc_hex);
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  auto next = collateral_next_update(*it->second);
  if (next && at >= *next) return nullptr;  // stale: the caller must fetch fresh collateral
  return it->second;
}

}  // namespace moss::attest
