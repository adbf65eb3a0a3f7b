#include "attest/collateral.h"
#include "attest/ecdsa_p256.h"
#include "attest/x509.h"
#include "common/encoding.h"
#include "common/ossl.h"
#include "common/rfc3339.h"

#include "common/file_util.h"
#include "common/strict_json.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

namespace moss::attest {
namespace {

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

using Json = nlohmann::ordered_json;
constexpr size_t kMaxTextBytes = 4096;  // any string in a PCS body (ids, dates, hex, statuses)
constexpr size_t kMaxAdvisories = 1024;

template <size_t N>
Result<std::array<uint8_t, N>> hex_array(const Json& j, std::string_view name) {
  MOSS_ASSIGN_OR_RETURN(std::string text, string_field(j, name, 2 * N));
  auto bytes = hex_decode(text, N);
  if (!bytes.ok() || bytes->size() != N) return invalid_argument("field '{}' must be {} hex bytes", name, N);
  std::array<uint8_t, N> out{};
  std::memcpy(out.data(), bytes->data(), N);
  return out;
}

Result<std::time_t> json_time(const Json& j, std::string_view name) {
  MOSS_ASSIGN_OR_RETURN(std::string text, string_field(j, name, 64));
  auto t = parse_rfc3339(text);
  if (!t.ok()) return t.status().with_context(fmt::format("field '{}'", name));
  return *t;
}

Result<std::vector<std::string>> advisories(const Json& level) {
  std::vector<std::string> out;
  if (!level.contains("advisoryIDs")) return out;
  MOSS_ASSIGN_OR_RETURN(const Json* ids, array_field(level, "advisoryIDs", kMaxAdvisories));
  for (const Json& id : *ids) {
    if (!id.is_string() || id.get_ref<const std::string&>().size() > 64)
      return invalid_argument("advisoryIDs must be strings of at most 64 bytes");
    out.push_back(id.get<std::string>());
  }
  return out;
}

Result<std::array<uint8_t, 16>> components(const Json& tcb, std::string_view name) {
  MOSS_ASSIGN_OR_RETURN(const Json* arr, array_field(tcb, name, 16));
  if (arr->size() != 16) return invalid_argument("field '{}' must have 16 TCB components", name);
  std::array<uint8_t, 16> out{};
  for (size_t i = 0; i < 16; ++i) {
    if (!(*arr)[i].is_object()) return invalid_argument("field '{}': a component must be an object", name);
    MOSS_ASSIGN_OR_RETURN(out[i], integer_field((*arr)[i], "svn", 0, 255));
  }
  return out;
}

Result<std::vector<IsvTcbLevel>> isv_levels(const Json& j) {
  MOSS_ASSIGN_OR_RETURN(const Json* arr, array_field(j, "tcbLevels", kMaxLevels));
  std::vector<IsvTcbLevel> out;
  for (const Json& l : *arr) {
    MOSS_ASSIGN_OR_RETURN(const Json* tcb, object_field(l, "tcb", 16));
    IsvTcbLevel level;
    MOSS_ASSIGN_OR_RETURN(level.isv_svn, integer_field(*tcb, "isvsvn", 0, UINT16_MAX));
    MOSS_ASSIGN_OR_RETURN(level.status, string_field(l, "tcbStatus", kMaxTextBytes));
    MOSS_ASSIGN_OR_RETURN(level.advisory_ids, advisories(l));
    out.push_back(std::move(level));
  }
  return out;
}

Result<TdxModuleIdentity> module_identity(const Json& j) {
  TdxModuleIdentity m;
  MOSS_ASSIGN_OR_RETURN(m.id, string_field_or(j, "id", kMaxTextBytes, ""));
  MOSS_ASSIGN_OR_RETURN(auto signer, hex_array<48>(j, "mrsigner"));
  m.mr_signer.assign(signer.begin(), signer.end());
  MOSS_ASSIGN_OR_RETURN(m.attributes, hex_array<8>(j, "attributes"));
  MOSS_ASSIGN_OR_RETURN(m.attributes_mask, hex_array<8>(j, "attributesMask"));
  if (j.contains("tcbLevels")) {
    MOSS_ASSIGN_OR_RETURN(m.levels, isv_levels(j));
  }
  return m;
}

// Splits a PCS body into its signed member text and the signature, and checks the signature.
// Strict parsing matters here beyond hygiene: with a duplicate key, the signature could cover one
// member text while the parser kept another.
Result<Json> signed_body(std::string_view text, std::string_view member, EVP_PKEY* signer) {
  if (text.size() > kMaxJsonBytes) return invalid_argument("{}: larger than {} bytes", member, kMaxJsonBytes);
  MOSS_ASSIGN_OR_RETURN(Json doc, parse_json_strict(text, member, 16));
  if (!doc.is_object() || !doc.contains(member))
    return invalid_argument("{}: missing '{}' or 'signature'", member, member);
  auto sig_hex = string_field(doc, "signature", 128);
  if (!sig_hex.ok()) return invalid_argument("{}: missing '{}' or 'signature'", member, member);
  MOSS_ASSIGN_OR_RETURN(auto raw, raw_member(text, member));
  auto sig = hex_decode(*sig_hex, 64);
  if (!sig.ok() || sig->size() != 64) return invalid_argument("{}: signature is not 64 hex bytes", member);
  std::span<const uint8_t> msg(reinterpret_cast<const uint8_t*>(raw.data()), raw.size());
  Status st = verify_ecdsa_raw(signer, msg, *sig);
  if (!st.ok()) return unauthenticated("{}-signature: does not verify with the TCB signing key", member);
  Json body = std::move(doc[std::string(member)]);
  if (!body.is_object()) return invalid_argument("{}: not an object", member);
  return body;
}

Result<TcbInfo> tcb_info_of(const Json& j) {
  TcbInfo t;
  MOSS_ASSIGN_OR_RETURN(t.id, string_field(j, "id", kMaxTextBytes));
  MOSS_ASSIGN_OR_RETURN(t.version, integer_field(j, "version", 0, INT32_MAX));
  if (t.version != 3) return unimplemented("TCB info version {} not supported (3 is)", t.version);
  if (t.id != "SGX" && t.id != "TDX") return invalid_argument("TCB info id {} unknown", quote_input_name(t.id));
  MOSS_ASSIGN_OR_RETURN(t.issue_date, json_time(j, "issueDate"));
  MOSS_ASSIGN_OR_RETURN(t.next_update, json_time(j, "nextUpdate"));
  MOSS_ASSIGN_OR_RETURN(t.fmspc, hex_array<6>(j, "fmspc"));
  MOSS_ASSIGN_OR_RETURN(t.pce_id, hex_array<2>(j, "pceId"));
  MOSS_ASSIGN_OR_RETURN(const Json* levels, array_field(j, "tcbLevels", kMaxLevels));
  for (const Json& l : *levels) {
    TcbLevel level;
    MOSS_ASSIGN_OR_RETURN(const Json* tcb, object_field(l, "tcb", 16));
    MOSS_ASSIGN_OR_RETURN(level.sgx_components, components(*tcb, "sgxtcbcomponents"));
    if (tcb->contains("tdxtcbcomponents")) {
      MOSS_ASSIGN_OR_RETURN(level.tdx_components, components(*tcb, "tdxtcbcomponents"));
      level.has_tdx_components = true;
    }
    MOSS_ASSIGN_OR_RETURN(level.pce_svn, integer_field(*tcb, "pcesvn", 0, UINT16_MAX));
    MOSS_ASSIGN_OR_RETURN(level.status, string_field(l, "tcbStatus", kMaxTextBytes));
    MOSS_ASSIGN_OR_RETURN(level.advisory_ids, advisories(l));
    t.levels.push_back(std::move(level));
  }
  if (j.contains("tdxModule")) {
    MOSS_ASSIGN_OR_RETURN(const Json* module, object_field(j, "tdxModule", 16));
    MOSS_ASSIGN_OR_RETURN(t.tdx_module, module_identity(*module));
  }
  if (j.contains("tdxModuleIdentities")) {
    MOSS_ASSIGN_OR_RETURN(const Json* ids, array_field(j, "tdxModuleIdentities", kMaxLevels));
    for (const Json& m : *ids) {
      if (!m.is_object()) return invalid_argument("tdxModuleIdentities must hold objects");
      MOSS_ASSIGN_OR_RETURN(auto identity, module_identity(m));
      t.tdx_module_identities.push_back(std::move(identity));
    }
  }
  return t;
}

Result<QeIdentity> qe_identity_of(const Json& j) {
  QeIdentity q;
  MOSS_ASSIGN_OR_RETURN(q.id, string_field(j, "id", kMaxTextBytes));
  MOSS_ASSIGN_OR_RETURN(int64_t version, integer_field(j, "version", 0, INT32_MAX));
  if (version != 2) return unimplemented("QE identity version {} not supported (2 is)", version);
  MOSS_ASSIGN_OR_RETURN(q.issue_date, json_time(j, "issueDate"));
  MOSS_ASSIGN_OR_RETURN(q.next_update, json_time(j, "nextUpdate"));
  MOSS_ASSIGN_OR_RETURN(auto misc, hex_array<4>(j, "miscselect"));
  MOSS_ASSIGN_OR_RETURN(auto misc_mask, hex_array<4>(j, "miscselectMask"));
  // The JSON shows miscselect big-endian; the report holds it little-endian as a number.
  q.misc_select = static_cast<uint32_t>(misc[0]) << 24 | misc[1] << 16 | misc[2] << 8 | misc[3];
  q.misc_select_mask = static_cast<uint32_t>(misc_mask[0]) << 24 | misc_mask[1] << 16 |
                       misc_mask[2] << 8 | misc_mask[3];
  MOSS_ASSIGN_OR_RETURN(q.attributes, hex_array<16>(j, "attributes"));
  MOSS_ASSIGN_OR_RETURN(q.attributes_mask, hex_array<16>(j, "attributesMask"));
  MOSS_ASSIGN_OR_RETURN(q.mr_signer, hex_array<32>(j, "mrsigner"));
  MOSS_ASSIGN_OR_RETURN(q.isv_prod_id, integer_field(j, "isvprodid", 0, UINT16_MAX));
  MOSS_ASSIGN_OR_RETURN(q.levels, isv_levels(j));
  return q;
}

}  // namespace

Result<TcbInfo> parse_tcb_info(std::string_view text, EVP_PKEY* signer) {
  MOSS_ASSIGN_OR_RETURN(Json j, signed_body(text, "tcbInfo", signer));
  auto t = tcb_info_of(j);
  if (!t.ok()) return std::move(t).status().with_context("TCB info");
  return t;
}

Result<QeIdentity> parse_qe_identity(std::string_view text, EVP_PKEY* signer) {
  MOSS_ASSIGN_OR_RETURN(Json j, signed_body(text, "enclaveIdentity", signer));
  auto q = qe_identity_of(j);
  if (!q.ok()) return std::move(q).status().with_context("QE identity");
  return q;
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
    Status st = x509::verify_chain(leaf, untrusted, root, {}, *not_before + 1);
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
    auto crl = x509::parse_der_crl(der);
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
  std::string key = collateral->tcb_info->id + "/" + hex_encode(collateral->tcb_info->fmspc);
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
