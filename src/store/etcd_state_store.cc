#include "store/etcd_state_store.h"

#include "common/encoding.h"
#include "crypto/hash.h"
#include "crypto/random.h"

#include <algorithm>
#include <cstring>

namespace moss::store {

namespace {

constexpr std::string_view kValueAad = "moss-etcd-value-v1";
constexpr int64_t kPage = 512;            // keys per range when scanning
constexpr int64_t kNonceLeaseBucketS = 60;  // one nonce lease serves this long
// Announced reads fetched with a write's head: a txn holds at most etcd's --max-txn-ops (128).
constexpr size_t kMaxFetchedRanges = 64;

std::string value_aad(std::string_view key) {
  std::string a(kValueAad);
  a.push_back('\0');
  a.append(key);
  return a;
}

// Reads the fields append_field wrote.
class FieldReader {
 public:
  explicit FieldReader(std::string_view in) : in_(in) {}
  std::optional<std::string_view> next() {
    if (in_.size() < 4) return std::nullopt;
    uint32_t n = (uint32_t(uint8_t(in_[0])) << 24) | (uint32_t(uint8_t(in_[1])) << 16) |
                 (uint32_t(uint8_t(in_[2])) << 8) | uint32_t(uint8_t(in_[3]));
    if (in_.size() - 4 < n) return std::nullopt;
    std::string_view f = in_.substr(4, n);
    in_.remove_prefix(4 + n);
    return f;
  }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

std::optional<int64_t> parse_i64(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  int64_t v = 0;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return std::nullopt;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return s[0] == '-' ? -v : v;
}

Status altered_row(std::string_view table) {
  return state_tampered("state-row-altered", fmt::format("a row of table {} does not authenticate", table));
}

bool int_less(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return a.size() < b.size();  // decimal, non-negative
  return a < b;
}

// Primary-key order, integer columns numerically (what ORDER BY gives on SQLite).
void sort_by_key(const Table& t, std::vector<Row>& rows) {
  std::sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    for (size_t i = 0; i < t.key_columns; ++i) {
      if (a[i] == b[i]) continue;
      return t.columns[i].kind == Column::kInt ? int_less(a[i], b[i]) : a[i] < b[i];
    }
    return false;
  });
}

bool matches(const Table& t, const Row& row, const Match& match) {
  for (const Eq& e : match) {
    if (row[t.column_index(e.column)] != e.value) return false;
  }
  return true;
}

}  // namespace

EtcdStateStore::EtcdStateStore(EtcdStoreOptions options, std::unique_ptr<EtcdClient> client,
                               std::unique_ptr<EtcdClient> audit_client, std::vector<Table> tables,
                               Sealer sealer, StateAuth auth, SecretBytes name_key)
    : options_(std::move(options)), client_(std::move(client)),
      audit_client_(std::move(audit_client)), tables_(std::move(tables)),
      sealer_(std::move(sealer)), auth_(std::move(auth)), name_key_(std::move(name_key)) {}

Result<std::unique_ptr<EtcdStateStore>> EtcdStateStore::open(EtcdStoreOptions options,
                                                             std::vector<Table> tables,
                                                             Sealer sealer) {
  if (options.prefix.empty() || options.prefix.back() != '/') {
    return invalid_argument("etcd prefix must end in '/' (not '{}')", options.prefix);
  }
  MOSS_ASSIGN_OR_RETURN(auto client, EtcdClient::create(options.client));
  MOSS_ASSIGN_OR_RETURN(auto audit_client, EtcdClient::create(options.client));
  MOSS_ASSIGN_OR_RETURN(StateAuth auth, StateAuth::derive(sealer));
  MOSS_ASSIGN_OR_RETURN(SecretBytes name_key, sealer.derive_subkey("moss-etcd-name-v1"));
  std::unique_ptr<EtcdStateStore> s(new EtcdStateStore(
      std::move(options), std::move(client), std::move(audit_client), std::move(tables),
      std::move(sealer), std::move(auth), std::move(name_key)));
  MOSS_RETURN_IF_ERROR(s->create_or_load());
  MOSS_RETURN_IF_ERROR(s->verify_all());
  return s;
}

std::string EtcdStateStore::describe() const {
  std::string endpoints;
  for (const std::string& e : client_->endpoints()) endpoints += (endpoints.empty() ? "" : ",") + e;
  return fmt::format("etcd {} prefix {}", endpoints, options_.prefix);
}

Result<StateHead> EtcdStateStore::decode_head(const EtcdKv& kv, uint64_t read) {
  MOSS_ASSIGN_OR_RETURN(Mac check, auth_.key_check());
  if (kv.value.size() < check.size() || std::memcmp(kv.value.data(), check.data(), check.size()) != 0) {
    return Status(ErrorCode::kFailedPrecondition,
                  "sealing-key-mismatch: the sealing key does not open this state (another "
                  "sealing key, or another TEE identity, than the one that created it)");
  }
  MOSS_ASSIGN_OR_RETURN(StateHead head, open_state_head(sealer_, as_bytes(kv.value).subspan(check.size())));
  seen_.saw(read, {head.version, head.audit});
  return head;
}

Status EtcdStateStore::create_or_load() {
  const std::string head_key = options_.prefix + "head";
  for (int attempt = 0; attempt < 2; ++attempt) {
    const uint64_t read = seen_.begin_read();
    MOSS_ASSIGN_OR_RETURN(auto got, client_->range(EtcdRange::one(head_key)));
    if (!got.kvs.empty()) {
      MOSS_ASSIGN_OR_RETURN(StateHead head, decode_head(got.kvs[0], read));
      identity_seed_ = std::move(head.identity_seed);
      return Status::Ok();
    }
    // A new state, unless anything is already under the prefix (then the head was deleted).
    MOSS_ASSIGN_OR_RETURN(auto any, client_->range({options_.prefix + "t/",
                                                    EtcdClient::prefix_end(options_.prefix + "t/"), 1}));
    MOSS_ASSIGN_OR_RETURN(auto log, client_->range({options_.prefix + "a/",
                                                    EtcdClient::prefix_end(options_.prefix + "a/"), 1}));
    if (!any.kvs.empty() || !log.kvs.empty()) {
      return state_tampered("state-meta-missing", "etcd holds rows or audit events but no state head");
    }
    StateHead head;
    MOSS_ASSIGN_OR_RETURN(head.identity_seed, crypto::random_secret(32));
    MOSS_ASSIGN_OR_RETURN(Mac check, auth_.key_check());
    MOSS_ASSIGN_OR_RETURN(auto sealed, seal_state_head(sealer_, head));
    std::string value(as_chars(check));
    value.append(as_chars(sealed));
    const uint64_t create = seen_.begin_read();
    MOSS_ASSIGN_OR_RETURN(auto txn, client_->txn({{EtcdCompare::kCreate, head_key, 0}},
                                                 {EtcdOp::put(head_key, value)}, {}));
    if (txn.succeeded) {
      seen_.saw(create, {head.version, head.audit});
      identity_seed_ = std::move(head.identity_seed);
      return Status::Ok();
    }
    // Another replica created it first: open that one.
  }
  return internal_error("etcd: the state head neither exists nor can be created");
}

std::string EtcdStateStore::row_key(const Table& t, const Row& row, size_t key_columns) const {
  std::string key = options_.prefix + "t/" + t.name + "/";
  std::string fields;
  append_field(fields, t.name);
  for (size_t i = 0; i < key_columns; ++i) {
    append_field(fields, row[i]);
    auto mac = crypto::hmac_sha256(name_key_.span(), as_bytes(fields));
    // hmac_sha256 fails only on an OpenSSL error; such a key matches nothing.
    key += mac.ok() ? hex_encode(std::span<const uint8_t>(mac->data(), 16)) : std::string("!");
    if (i + 1 < key_columns) key.push_back('/');
  }
  return key;
}

Result<std::string> EtcdStateStore::encode_row(const std::string& key, const Table& t,
                                               const Row& row, int64_t version) const {
  MOSS_ASSIGN_OR_RETURN(Mac mac, auth_.row_mac(t.name, row, version));
  std::string plain;
  for (const std::string& f : row) append_field(plain, f);
  append_field(plain, std::to_string(version));
  append_field(plain, as_chars(mac));
  SecretBytes secret(as_bytes(plain));
  std::fill(plain.begin(), plain.end(), '\0');
  MOSS_ASSIGN_OR_RETURN(auto sealed, sealer_.seal(value_aad(key), secret.span()));
  return std::string(as_chars(sealed));
}

Result<EtcdStateStore::RowAt> EtcdStateStore::decode_row(const Table& t, const EtcdKv& kv,
                                                         int64_t state_version) const {
  auto opened = sealer_.open(value_aad(kv.key), as_bytes(kv.value));
  if (!opened.ok()) return altered_row(t.name);
  FieldReader in(as_chars(opened->span()));
  RowAt out;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    auto f = in.next();
    if (!f) return altered_row(t.name);
    out.row.emplace_back(*f);
  }
  auto version = in.next();
  auto mac = in.next();
  std::optional<int64_t> v = version ? parse_i64(*version) : std::nullopt;
  if (!v || !mac || !in.done() || row_key(t, out.row, t.key_columns) != kv.key) return altered_row(t.name);
  out.version = *v;
  MOSS_RETURN_IF_ERROR(check_row(auth_, t.name, out.row, out.version, as_bytes(*mac), state_version));
  return out;
}

Result<std::pair<EtcdRange, std::string>> EtcdStateStore::range_for(const Table& t,
                                                                     const Match& match) const {
  // The longest leading run of primary-key columns the match names selects a key prefix.
  Row key_values;
  for (size_t i = 0; i < t.key_columns; ++i) {
    auto e = std::find_if(match.begin(), match.end(),
                          [&](const Eq& eq) { return std::string_view(eq.column) == t.columns[i].name; });
    if (e == match.end()) break;
    key_values.push_back(e->value);
  }
  for (const Eq& e : match) {
    if (t.column_index(e.column) < 0) return internal_error("table {} has no column {}", t.name, e.column);
  }
  EtcdRange range;
  std::string prefix;
  if (key_values.size() == t.key_columns) {
    range.key = row_key(t, key_values, t.key_columns);
    prefix = range.key;
  } else {
    prefix = key_values.empty() ? options_.prefix + "t/" + t.name + "/"
                                : row_key(t, key_values, key_values.size()) + "/";
    range.key = prefix;
    range.range_end = EtcdClient::prefix_end(prefix);
  }
  return std::make_pair(std::move(range), std::move(prefix));
}

Result<std::vector<EtcdKv>> EtcdStateStore::read_in_write(const EtcdRange& range) {
  for (const auto& [fetched, kvs] : fetched_) {
    const auto& [key, end] = fetched;
    const bool covered = end.empty() ? range.range_end.empty() && range.key == key
                                     : key <= range.key && (range.range_end.empty()
                                                                ? range.key < end
                                                                : range.range_end <= end);
    if (!covered) continue;
    std::vector<EtcdKv> out;
    for (const EtcdKv& kv : kvs) {
      const bool in = range.range_end.empty() ? kv.key == range.key
                                              : kv.key >= range.key && kv.key < range.range_end;
      if (in) out.push_back(kv);
    }
    return out;
  }
  EtcdRange at = range;
  at.revision = read_revision_;
  MOSS_ASSIGN_OR_RETURN(auto got, client_->range(at));
  return std::move(got.kvs);
}

Result<std::map<std::string, EtcdStateStore::RowAt>> EtcdStateStore::matching(const Table& t,
                                                                             const Match& match) {
  MOSS_ASSIGN_OR_RETURN(auto found, range_for(t, match));
  EtcdRange& range = found.first;
  const std::string& prefix = found.second;
  std::map<std::string, RowAt> out;
  int64_t state_version = 0;
  if (in_write_) {
    MOSS_ASSIGN_OR_RETURN(auto kvs, read_in_write(range));
    for (const EtcdKv& kv : kvs) {
      MOSS_ASSIGN_OR_RETURN(RowAt r, decode_row(t, kv, head_.version));
      if (matches(t, r.row, match)) out.emplace(kv.key, std::move(r));
    }
    // This write's own changes.
    for (auto it = pending_.lower_bound(prefix); it != pending_.end() && it->first.starts_with(prefix); ++it) {
      if (range.range_end.empty() && it->first != prefix) continue;
      out.erase(it->first);
      if (it->second.put && matches(t, it->second.put->row, match)) out.emplace(it->first, *it->second.put);
    }
    return out;
  }
  // Outside a write: the head and the rows at one revision, so every row's version is checked
  // against the head it belongs with.
  const uint64_t read = seen_.begin_read();
  MOSS_ASSIGN_OR_RETURN(auto txn, client_->txn({}, {EtcdOp::get(EtcdRange::one(options_.prefix + "head")),
                                                    EtcdOp::get(range)}, {}));
  if (txn.ranges[0].kvs.empty()) return state_tampered("state-meta-missing", "the etcd state head is gone");
  MOSS_ASSIGN_OR_RETURN(StateHead head, decode_head(txn.ranges[0].kvs[0], read));
  state_version = head.version;
  for (const EtcdKv& kv : txn.ranges[1].kvs) {
    MOSS_ASSIGN_OR_RETURN(RowAt r, decode_row(t, kv, state_version));
    if (matches(t, r.row, match)) out.emplace(kv.key, std::move(r));
  }
  return out;
}

Result<std::vector<Row>> EtcdStateStore::select(const Table& t, const Match& match) {
  MOSS_ASSIGN_OR_RETURN(auto rows, matching(t, match));
  std::vector<Row> out;
  out.reserve(rows.size());
  for (auto& [key, r] : rows) out.push_back(std::move(r.row));
  sort_by_key(t, out);
  return out;
}

Status EtcdStateStore::insert(const Table& t, const Row& row) {
  if (!in_write_) return internal_error("StateStore::insert outside write()");
  if (row.size() != t.columns.size()) return internal_error("row of {} columns for table {}", row.size(), t.name);
  std::string key = row_key(t, row, t.key_columns);
  bool exists = false;
  if (auto it = pending_.find(key); it != pending_.end()) {
    exists = it->second.put.has_value();
  } else {
    MOSS_ASSIGN_OR_RETURN(auto kvs, read_in_write(EtcdRange::one(key)));
    exists = !kvs.empty();
  }
  if (exists) return already_exists("table {}: a row with this primary key exists", t.name);
  MOSS_ASSIGN_OR_RETURN(std::string sealed, encode_row(key, t, row, head_.version));
  MOSS_ASSIGN_OR_RETURN(Mac element, auth_.set_element(t.name, row, head_.version));
  xor_into(head_.digest, element);
  pending_[key] = Pending{RowAt{row, head_.version}, std::move(sealed)};
  return Status::Ok();
}

Result<int64_t> EtcdStateStore::remove(const Table& t, const Match& match) {
  if (!in_write_) return internal_error("StateStore::remove outside write()");
  MOSS_ASSIGN_OR_RETURN(auto rows, matching(t, match));
  for (auto& [key, r] : rows) {
    MOSS_ASSIGN_OR_RETURN(Mac element, auth_.set_element(t.name, r.row, r.version));
    xor_into(head_.digest, element);
    pending_[key] = Pending{std::nullopt, ""};
  }
  return static_cast<int64_t>(rows.size());
}

std::string EtcdStateStore::audit_key(int64_t seq) const {
  return options_.prefix + fmt::format("a/{:016x}", static_cast<uint64_t>(seq));
}

Result<std::string> EtcdStateStore::encode_audit(const std::string& key, const AuditRecord& r) const {
  std::string plain;
  append_field(plain, std::to_string(r.seq));
  append_field(plain, std::to_string(r.time_ms));
  for (const std::string* f : {&r.event.type, &r.event.actor, &r.event.model_id, &r.event.user_id,
                               &r.event.measurement, &r.event.detail}) {
    append_field(plain, *f);
  }
  append_field(plain, as_chars(r.prev_hash));
  append_field(plain, as_chars(r.hash));
  MOSS_ASSIGN_OR_RETURN(auto sealed, sealer_.seal(value_aad(key), as_bytes(plain)));
  return std::string(as_chars(sealed));
}

Result<AuditRecord> EtcdStateStore::decode_audit(const EtcdKv& kv) const {
  auto bad = [&] {
    return state_tampered("audit-chain-broken", fmt::format("audit record {} does not authenticate", kv.key));
  };
  auto opened = sealer_.open(value_aad(kv.key), as_bytes(kv.value));
  if (!opened.ok()) return bad();
  FieldReader in(as_chars(opened->span()));
  std::vector<std::string_view> f;
  while (auto next = in.next()) f.push_back(*next);
  if (!in.done() || f.size() != 10 || f[8].size() != 32 || f[9].size() != 32) return bad();
  AuditRecord r;
  auto seq = parse_i64(f[0]), time_ms = parse_i64(f[1]);
  if (!seq || !time_ms || audit_key(*seq) != kv.key) return bad();
  r.seq = *seq;
  r.time_ms = *time_ms;
  r.event = {std::string(f[2]), std::string(f[3]), std::string(f[4]),
             std::string(f[5]), std::string(f[6]), std::string(f[7])};
  std::memcpy(r.prev_hash.data(), f[8].data(), 32);
  std::memcpy(r.hash.data(), f[9].data(), 32);
  MOSS_RETURN_IF_ERROR(check_record(auth_.audit_key(), r));
  return r;
}

Status EtcdStateStore::audit(const AuditEvent& event, int64_t time_ms) {
  if (!in_write_) return internal_error("StateStore::audit outside write()");
  AuditRecord r;
  r.seq = head_.audit.seq + 1;
  r.time_ms = time_ms;
  r.event = event;
  r.prev_hash = head_.audit.hash;
  MOSS_ASSIGN_OR_RETURN(r.hash, audit_record_hash(auth_.audit_key(), r.prev_hash, r.seq, r.time_ms, r.event));
  std::string key = audit_key(r.seq);
  MOSS_ASSIGN_OR_RETURN(std::string value, encode_audit(key, r));
  pending_audit_.push_back(EtcdOp::put(std::move(key), std::move(value)));
  head_.audit = {r.seq, r.hash};
  return Status::Ok();
}

Status EtcdStateStore::write(const std::function<Status()>& body, const std::vector<Read>& reads) {
  if (in_write_) return internal_error("nested StateStore::write");
  const std::string head_key = options_.prefix + "head";
  MOSS_ASSIGN_OR_RETURN(Mac check, auth_.key_check());
  // The head and the announced ranges (each once; a bounded number: the rest is read when asked
  // for) in one txn: one revision, one round trip.
  std::vector<EtcdOp> fetch = {EtcdOp::get(EtcdRange::one(head_key))};
  std::vector<std::pair<std::string, std::string>> fetched_ranges;
  for (const Read& r : reads) {
    MOSS_ASSIGN_OR_RETURN(auto found, range_for(*r.table, r.match));
    std::pair<std::string, std::string> id{found.first.key, found.first.range_end};
    if (fetched_ranges.size() >= kMaxFetchedRanges ||
        std::find(fetched_ranges.begin(), fetched_ranges.end(), id) != fetched_ranges.end()) {
      continue;
    }
    fetched_ranges.push_back(std::move(id));
    fetch.push_back(EtcdOp::get(std::move(found.first)));
  }
  for (int attempt = 0; attempt < options_.max_write_attempts; ++attempt) {
    const uint64_t read = seen_.begin_read();
    MOSS_ASSIGN_OR_RETURN(auto got, client_->txn({}, fetch, {}));
    const EtcdRangeResult& head = got.ranges[0];
    if (head.kvs.empty()) return state_tampered("state-meta-missing", "the etcd state head is gone");
    MOSS_ASSIGN_OR_RETURN(head_, decode_head(head.kvs[0], read));
    head_mod_revision_ = head.kvs[0].mod_revision;
    read_revision_ = got.revision;
    fetched_.clear();
    for (size_t i = 0; i < fetched_ranges.size(); ++i) {
      fetched_[fetched_ranges[i]] = std::move(got.ranges[i + 1].kvs);
    }
    pending_.clear();
    pending_audit_.clear();
    ++head_.version;
    in_write_ = true;
    Status s = body();
    in_write_ = false;
    fetched_.clear();
    if (!s.ok()) {
      if (s.reason() == kEtcdRevisionCompacted) continue;  // read again, at the latest
      return s;
    }
    std::vector<EtcdOp> ops;
    for (auto& [key, p] : pending_) {
      ops.push_back(p.put ? EtcdOp::put(key, std::move(p.sealed)) : EtcdOp::del(key));
    }
    for (EtcdOp& op : pending_audit_) ops.push_back(std::move(op));
    MOSS_ASSIGN_OR_RETURN(auto sealed, seal_state_head(sealer_, head_));
    std::string value(as_chars(check));
    value.append(as_chars(sealed));
    ops.push_back(EtcdOp::put(head_key, std::move(value)));
    pending_.clear();
    pending_audit_.clear();
    // A commit is a read too: its compare held, so the head it wrote is the newest.
    const uint64_t commit = seen_.begin_read();
    MOSS_ASSIGN_OR_RETURN(auto txn, client_->txn({{EtcdCompare::kMod, head_key, head_mod_revision_}},
                                                 ops, {}));
    if (txn.succeeded) {
      seen_.saw(commit, {head_.version, head_.audit});
      return Status::Ok();
    }
    // Another replica committed since our read: run the body again on the new state.
  }
  return refuse(ErrorCode::kUnavailable, "state-write-conflict",
                fmt::format("other replicas committed first {} times in a row", options_.max_write_attempts));
}

Status EtcdStateStore::use_nonce(std::string_view principal, std::string_view nonce,
                                 int64_t now_s, int64_t retain_s) {
  std::string fields;
  append_field(fields, "nonce");
  append_field(fields, principal);
  append_field(fields, nonce);
  MOSS_ASSIGN_OR_RETURN(Mac name, crypto::hmac_sha256(name_key_.span(), as_bytes(fields)));
  const std::string key = options_.prefix + "n/" + hex_encode(std::span<const uint8_t>(name.data(), 16));
  append_field(fields, std::to_string(now_s));
  // Sealed with a fresh random nonce: the value is unique to this call, so a resent txn that
  // finds it already stored knows the key is its own (etcd_client.h: resends).
  MOSS_ASSIGN_OR_RETURN(auto sealed, sealer_.seal(value_aad(key), as_bytes(fields)));
  const std::string value(as_chars(sealed));
  const std::string head_key = options_.prefix + "head";
  for (int attempt = 0; attempt < 2; ++attempt) {
    int64_t lease = 0;
    {
      std::lock_guard lock(lease_mu_);
      if (lease_ == 0 || now_s >= lease_until_s_) {
        MOSS_ASSIGN_OR_RETURN(lease_, client_->lease_grant(retain_s + kNonceLeaseBucketS));
        lease_until_s_ = now_s + kNonceLeaseBucketS;
      }
      lease = lease_;
    }
    const uint64_t read = seen_.begin_read();
    auto txn = client_->txn({{EtcdCompare::kCreate, key, 0}},
                            {EtcdOp::put(key, value, lease), EtcdOp::get(EtcdRange::one(head_key))},
                            {EtcdOp::get(EtcdRange::one(key)), EtcdOp::get(EtcdRange::one(head_key))});
    if (!txn.ok() && txn.status().reason() == kEtcdLeaseNotFound) {
      std::lock_guard lock(lease_mu_);
      lease_ = 0;  // expired or revoked: take a new one
      continue;
    }
    MOSS_RETURN_IF_ERROR(txn.status());
    const auto& head = txn->ranges.back();
    if (!head.kvs.empty()) MOSS_RETURN_IF_ERROR(decode_head(head.kvs[0], read).status());
    if (txn->succeeded) return Status::Ok();
    if (!txn->ranges[0].kvs.empty() && txn->ranges[0].kvs[0].value == value) return Status::Ok();
    return already_exists("nonce already used");
  }
  return unavailable("etcd: no lease for nonces");
}

Result<std::vector<AuditRecord>> EtcdStateStore::read_audit(EtcdClient& client, int64_t after_seq,
                                                            int64_t limit, int64_t revision) {
  const std::string end = EtcdClient::prefix_end(options_.prefix + "a/");
  MOSS_ASSIGN_OR_RETURN(auto got, client.range({audit_key(after_seq + 1), end, limit, revision}));
  std::vector<AuditRecord> out;
  for (const EtcdKv& kv : got.kvs) {
    MOSS_ASSIGN_OR_RETURN(AuditRecord r, decode_audit(kv));
    if (r.seq != after_seq + 1 + static_cast<int64_t>(out.size())) {
      return state_tampered("audit-chain-broken",
                            fmt::format("audit log event {} follows {} (events missing)", r.seq,
                                        after_seq + static_cast<int64_t>(out.size())));
    }
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<AuditRecord>> EtcdStateStore::audit_records(int64_t after_seq, int64_t limit) {
  if (limit < 1 || limit > kMaxAuditPage) return invalid_argument("audit page size must be 1..{}", kMaxAuditPage);
  return read_audit(*audit_client_, std::max<int64_t>(after_seq, 0), limit, 0);
}

Result<std::vector<AuditRecord>> EtcdStateStore::query_audit(const AuditQuery& q) {
  if (q.limit < 1 || q.limit > kMaxAuditPage) return invalid_argument("audit page size must be 1..{}", kMaxAuditPage);
  // No index in etcd (names are MACs): the log is read in pages from the cursor and filtered here.
  std::vector<AuditRecord> out;
  int64_t after = std::max<int64_t>(q.after_seq, 0);
  while (static_cast<int64_t>(out.size()) < q.limit) {
    MOSS_ASSIGN_OR_RETURN(auto page, read_audit(*audit_client_, after, kPage, 0));
    for (AuditRecord& r : page) {
      if (static_cast<int64_t>(out.size()) < q.limit && audit_query_matches(q, r)) out.push_back(std::move(r));
    }
    if (static_cast<int64_t>(page.size()) < kPage) break;
    after = page.back().seq;
  }
  return out;
}

Result<StateHeadView> EtcdStateStore::head() {
  const uint64_t read = seen_.begin_read();
  MOSS_ASSIGN_OR_RETURN(auto got, client_->range(EtcdRange::one(options_.prefix + "head")));
  if (got.kvs.empty()) return state_tampered("state-meta-missing", "the etcd state head is gone");
  MOSS_ASSIGN_OR_RETURN(StateHead head, decode_head(got.kvs[0], read));
  return StateHeadView{head.version, head.audit};
}

Status EtcdStateStore::readable() {
  // Through the audit client: a probe must not queue behind a write holding client_, and the
  // sealed head is not opened (a probe proves etcd answers, verify_all() proves the state).
  MOSS_ASSIGN_OR_RETURN(auto got, audit_client_->range(EtcdRange::one(options_.prefix + "head")));
  if (got.kvs.empty()) return state_tampered("state-meta-missing", "the etcd state head is gone");
  return Status::Ok();
}

Status EtcdStateStore::verify_all() {
  const uint64_t read = seen_.begin_read();
  MOSS_ASSIGN_OR_RETURN(auto got, client_->range(EtcdRange::one(options_.prefix + "head")));
  if (got.kvs.empty()) return state_tampered("state-meta-missing", "the etcd state head is gone");
  MOSS_ASSIGN_OR_RETURN(StateHead head, decode_head(got.kvs[0], read));
  const int64_t revision = got.revision;
  // Every row, at the head's revision, against the accumulator.
  const std::string rows_prefix = options_.prefix + "t/";
  const std::string rows_end = EtcdClient::prefix_end(rows_prefix);
  Mac acc{};
  std::string from = rows_prefix;
  while (true) {
    MOSS_ASSIGN_OR_RETURN(auto page, client_->range({from, rows_end, kPage, revision}));
    for (const EtcdKv& kv : page.kvs) {
      std::string_view rest = std::string_view(kv.key).substr(rows_prefix.size());
      std::string_view name = rest.substr(0, rest.find('/'));
      auto t = std::find_if(tables_.begin(), tables_.end(), [&](const Table& x) { return name == x.name; });
      if (t == tables_.end()) return altered_row(name);
      MOSS_ASSIGN_OR_RETURN(RowAt r, decode_row(*t, kv, head.version));
      MOSS_ASSIGN_OR_RETURN(Mac e, auth_.set_element(t->name, r.row, r.version));
      xor_into(acc, e);
    }
    if (!page.more || page.kvs.empty()) break;
    from = page.kvs.back().key + std::string(1, '\0');
  }
  if (acc != head.digest) {
    return state_tampered("state-rows-changed",
                          "rows were inserted, deleted or put back from an older copy of the state");
  }
  // The audit chain, linked from the first event to the head.
  AuditHead chain;
  while (true) {
    MOSS_ASSIGN_OR_RETURN(auto page, read_audit(*client_, chain.seq, kPage, revision));
    for (const AuditRecord& r : page) {
      if (r.prev_hash != chain.hash) {
        return state_tampered("audit-chain-broken",
                              fmt::format("audit log event {} does not link to event {}", r.seq, chain.seq));
      }
      chain = {r.seq, r.hash};
    }
    if (static_cast<int64_t>(page.size()) < kPage) break;
  }
  if (!(chain == head.audit)) {
    return state_tampered("audit-head-mismatch",
                          fmt::format("the audit log ends at event {}, the state recorded event {}",
                                      chain.seq, head.audit.seq));
  }
  return Status::Ok();
}

}  // namespace moss::store
