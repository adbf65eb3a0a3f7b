#include "store/etcd_client.h"

#include "common/encoding.h"

#include <nlohmann/json.hpp>

namespace moss::store {

namespace {

using nlohmann::json;

constexpr size_t kMaxValueBytes = 16 * 1024 * 1024;

std::string b64(std::string_view s) { return base64_encode(as_bytes(s)); }

Result<std::string> unb64(const json& j, const char* field) {
  if (!j.contains(field)) return std::string();
  if (!j[field].is_string()) return internal_error("etcd: field {} is not a string", field);
  MOSS_ASSIGN_OR_RETURN(auto bytes, base64_decode(j[field].get<std::string>(), kMaxValueBytes));
  return std::string(as_chars(bytes));
}

// The gateway writes int64 as a decimal string (proto3 JSON) and omits zero values.
Result<int64_t> int_field(const json& j, const char* field) {
  if (!j.contains(field)) return int64_t{0};
  const json& v = j[field];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    try {
      size_t used = 0;
      const std::string& s = v.get_ref<const std::string&>();
      int64_t n = std::stoll(s, &used);
      if (used == s.size()) return n;
    } catch (const std::exception&) {
    }
  }
  return internal_error("etcd: field {} is not an integer", field);
}

json range_json(const EtcdRange& r) {
  json j = {{"key", b64(r.key)}};
  if (!r.range_end.empty()) j["range_end"] = b64(r.range_end);
  if (r.limit) j["limit"] = std::to_string(r.limit);
  if (r.revision) j["revision"] = std::to_string(r.revision);
  return j;
}

Result<EtcdRangeResult> parse_range(const json& j, int64_t revision) {
  EtcdRangeResult out;
  out.revision = revision;
  out.more = j.value("more", false);
  if (j.contains("kvs")) {
    if (!j["kvs"].is_array()) return internal_error("etcd: kvs is not an array");
    for (const json& kv : j["kvs"]) {
      if (!kv.is_object()) return internal_error("etcd: a kv is not an object");
      EtcdKv e;
      MOSS_ASSIGN_OR_RETURN(e.key, unb64(kv, "key"));
      MOSS_ASSIGN_OR_RETURN(e.value, unb64(kv, "value"));
      MOSS_ASSIGN_OR_RETURN(e.create_revision, int_field(kv, "create_revision"));
      MOSS_ASSIGN_OR_RETURN(e.mod_revision, int_field(kv, "mod_revision"));
      MOSS_ASSIGN_OR_RETURN(e.lease, int_field(kv, "lease"));
      out.kvs.push_back(std::move(e));
    }
  }
  return out;
}

Result<int64_t> header_revision(const json& j) {
  if (!j.contains("header") || !j["header"].is_object()) return internal_error("etcd: answer without header");
  return int_field(j["header"], "revision");
}

Result<json> parse(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return internal_error("etcd: answer is not a JSON object");
  return j;
}

}  // namespace

Result<std::unique_ptr<EtcdClient>> EtcdClient::create(EtcdClientOptions options) {
  if (options.endpoints.empty()) return invalid_argument("etcd: no endpoints");
  for (const std::string& e : options.endpoints) {
    MOSS_ASSIGN_OR_RETURN(net::Url url, net::parse_url(e));
    if (url.tls() && !options.tls) return invalid_argument("etcd endpoint {} is https but no TLS is configured", e);
  }
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(options)));
}

std::string EtcdClient::prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<uint8_t>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<uint8_t>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

Result<std::string> EtcdClient::call(std::string_view path, const std::string& body) {
  std::lock_guard lock(mu_);
  Status last;
  for (size_t tried = 0; tried < options_.endpoints.size(); ++tried) {
    if (!client_) {
      net::ClientOptions o;
      o.tls = options_.tls;
      o.connect_timeout = options_.timeout;
      o.write_timeout = options_.timeout;
      o.read_timeout = options_.timeout;
      o.max_response_body_bytes = 64 * 1024 * 1024;
      MOSS_ASSIGN_OR_RETURN(net::Client c, net::Client::for_url(options_.endpoints[current_], std::move(o)));
      client_.emplace(std::move(c));
    }
    round_trips_.fetch_add(1, std::memory_order_relaxed);
    Result<net::Response> res = client_->post(std::string(path), body);
    if (res.ok() && res->status < 500) {
      if (res->status == 200) return std::move(res->body);
      auto j = json::parse(res->body, nullptr, false);
      std::string message = j.is_object() ? j.value("message", j.value("error", res->body)) : res->body;
      // etcd says these only in its message text: read here, once, into reasons.
      if (message.find("compacted") != std::string::npos) {
        return refuse(ErrorCode::kFailedPrecondition, kEtcdRevisionCompacted, message);
      }
      if (message.find("lease not found") != std::string::npos) {
        return refuse(ErrorCode::kInternal, kEtcdLeaseNotFound, message);
      }
      // Our request was refused (e.g. too many operations in one txn): never the caller's fault.
      return internal_error("etcd {} {}: {}", options_.endpoints[current_], res->status, message);
    }
    if (!res.ok() && res.status().code() != ErrorCode::kUnavailable &&
        res.status().code() != ErrorCode::kDeadlineExceeded) {
      return res.status();
    }
    last = res.ok() ? unavailable("etcd {}: HTTP {}: {}", options_.endpoints[current_], res->status,
                                  res->body.substr(0, 200))
                    : res.status();
    client_.reset();
    current_ = (current_ + 1) % options_.endpoints.size();
  }
  return unavailable("etcd: no endpoint answered (last: {})", last.message());
}

Result<EtcdRangeResult> EtcdClient::range(const EtcdRange& r) {
  MOSS_ASSIGN_OR_RETURN(std::string body, call("/v3/kv/range", range_json(r).dump()));
  MOSS_ASSIGN_OR_RETURN(json j, parse(body));
  MOSS_ASSIGN_OR_RETURN(int64_t revision, header_revision(j));
  return parse_range(j, revision);
}

Result<EtcdTxnResult> EtcdClient::txn(const std::vector<EtcdCompare>& compare,
                                      const std::vector<EtcdOp>& success,
                                      const std::vector<EtcdOp>& failure) {
  json cmp = json::array();
  for (const EtcdCompare& c : compare) {
    json e = {{"key", b64(c.key)}, {"result", "EQUAL"}};
    if (c.target == EtcdCompare::kMod) {
      e["target"] = "MOD";
      e["mod_revision"] = std::to_string(c.value);
    } else {
      e["target"] = "CREATE";
      e["create_revision"] = std::to_string(c.value);
    }
    cmp.push_back(std::move(e));
  }
  auto ops = [](const std::vector<EtcdOp>& list) {
    json a = json::array();
    for (const EtcdOp& op : list) {
      switch (op.kind) {
        case EtcdOp::kPut: {
          json p = {{"key", b64(op.key)}, {"value", b64(op.value)}};
          if (op.lease) p["lease"] = std::to_string(op.lease);
          a.push_back({{"request_put", std::move(p)}});
          break;
        }
        case EtcdOp::kDelete: a.push_back({{"request_delete_range", {{"key", b64(op.key)}}}}); break;
        case EtcdOp::kRange: a.push_back({{"request_range", range_json(op.range)}}); break;
      }
    }
    return a;
  };
  json req = {{"compare", cmp}, {"success", ops(success)}, {"failure", ops(failure)}};
  MOSS_ASSIGN_OR_RETURN(std::string body, call("/v3/kv/txn", req.dump()));
  MOSS_ASSIGN_OR_RETURN(json j, parse(body));
  EtcdTxnResult out;
  MOSS_ASSIGN_OR_RETURN(out.revision, header_revision(j));
  out.succeeded = j.value("succeeded", false);
  if (j.contains("responses")) {
    if (!j["responses"].is_array()) return internal_error("etcd: txn responses is not an array");
    for (const json& r : j["responses"]) {
      if (r.is_object() && r.contains("response_range")) {
        MOSS_ASSIGN_OR_RETURN(auto range, parse_range(r["response_range"], out.revision));
        out.ranges.push_back(std::move(range));
      }
    }
  }
  const std::vector<EtcdOp>& ran = out.succeeded ? success : failure;
  size_t expected = 0;
  for (const EtcdOp& op : ran) expected += op.kind == EtcdOp::kRange;
  if (out.ranges.size() != expected) {
    return internal_error("etcd: txn answered {} ranges, {} expected", out.ranges.size(), expected);
  }
  return out;
}

Result<int64_t> EtcdClient::lease_grant(int64_t ttl_s) {
  json req = {{"TTL", std::to_string(ttl_s)}};
  MOSS_ASSIGN_OR_RETURN(std::string body, call("/v3/lease/grant", req.dump()));
  MOSS_ASSIGN_OR_RETURN(json j, parse(body));
  MOSS_ASSIGN_OR_RETURN(int64_t id, int_field(j, "ID"));
  if (id == 0) return internal_error("etcd: lease grant answered no id ({})", j.value("error", ""));
  return id;
}

}  // namespace moss::store
