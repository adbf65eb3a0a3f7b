#include "store/state_store.h"

#include "common/encoding.h"
#include "crypto/random.h"

#include <cstring>

namespace moss::store {

namespace {

constexpr int kSchemaVersion = 2;
constexpr std::string_view kMetaAad = "moss-state-meta-v1";
constexpr size_t kMetaBytes = 8 + 32 + 8 + 32 + 32;

const std::string_view kMetaSchemaSql = R"sql(
CREATE TABLE state_meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  key_check BLOB NOT NULL,
  sealed BLOB NOT NULL
);
)sql";

Status tampered(std::string_view reason, std::string message) {
  return Status(ErrorCode::kDataLoss, fmt::format("{}: {}", reason, message));
}

void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

void xor_into(Mac& acc, const Mac& element) {
  for (size_t i = 0; i < acc.size(); ++i) acc[i] ^= element[i];
}

std::string column_list(const Table& t) {
  std::string out;
  for (const Column& c : t.columns) {
    out += c.name;
    out += ", ";
  }
  return out + "row_version, mac";
}

}  // namespace

Result<std::unique_ptr<StateStore>> StateStore::open(const std::filesystem::path& path,
                                                     std::string_view schema_sql,
                                                     std::vector<Table> tables, Sealer sealer) {
  MOSS_ASSIGN_OR_RETURN(auto db, Database::open(path));
  MOSS_ASSIGN_OR_RETURN(int schema, db->schema_version());
  if (schema != 0 && schema < kSchemaVersion) {
    return Status(ErrorCode::kFailedPrecondition,
                  fmt::format("state-format-unsupported: {} has schema version {}, from before the "
                              "state was authenticated; this version refuses to trust it. Start "
                              "from a new state directory (owners upload keys and grants again).",
                              path.string(), schema));
  }
  std::string sql = std::string(schema_sql) + std::string(kMetaSchemaSql) +
                    std::string(kAuditLogSchemaSql);
  const Migration migrations[] = {{kSchemaVersion, sql}};
  MOSS_RETURN_IF_ERROR(db->migrate(migrations));
  MOSS_ASSIGN_OR_RETURN(StateAuth auth, StateAuth::derive(sealer));
  std::unique_ptr<StateStore> s(
      new StateStore(std::move(db), std::move(tables), std::move(sealer), std::move(auth)));
  MOSS_RETURN_IF_ERROR(s->load_meta());
  MOSS_RETURN_IF_ERROR(s->verify_all());
  return s;
}

Status StateStore::load_meta() {
  MOSS_ASSIGN_OR_RETURN(Mac check, auth_.key_check());
  MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare("SELECT key_check, sealed FROM state_meta WHERE id = 1"));
  MOSS_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) {
    // A new state, unless anything is already in it (then the meta row was deleted).
    for (const Table& t : tables_) {
      MOSS_ASSIGN_OR_RETURN(auto any, db_->prepare(std::string("SELECT 1 FROM ") + t.name + " LIMIT 1"));
      MOSS_ASSIGN_OR_RETURN(bool has, any.step());
      if (has) return tampered("state-meta-missing", fmt::format("table {} has rows but the state has no meta row", t.name));
    }
    MOSS_ASSIGN_OR_RETURN(AuditHead head, store::audit_head(*db_));
    if (head.seq != 0) return tampered("state-meta-missing", "the audit log has events but the state has no meta row");
    MOSS_ASSIGN_OR_RETURN(identity_seed_, crypto::random_secret(32));
    return db_->transaction([&] { return store_meta(); });
  }
  auto stored_check = st.column_blob(0);
  if (stored_check.size() != check.size() ||
      std::memcmp(stored_check.data(), check.data(), check.size()) != 0) {
    return Status(ErrorCode::kFailedPrecondition,
                  "sealing-key-mismatch: the sealing key does not open this state (another "
                  "sealing key, or another TEE identity, than the one that created it)");
  }
  auto opened = sealer_.open(kMetaAad, st.column_blob(1));
  if (!opened.ok() || opened->size() != kMetaBytes) {
    return tampered("state-meta-altered", "the sealed state meta does not open");
  }
  const uint8_t* p = opened->data();
  version_ = static_cast<int64_t>(get_u64(p));
  std::memcpy(digest_.data(), p + 8, 32);
  audit_.seq = static_cast<int64_t>(get_u64(p + 40));
  std::memcpy(audit_.hash.data(), p + 48, 32);
  identity_seed_ = SecretBytes(std::span<const uint8_t>(p + 80, 32));
  return Status::Ok();
}

Status StateStore::store_meta() {
  SecretBytes plain(kMetaBytes);
  uint8_t* p = plain.data();
  put_u64(p, static_cast<uint64_t>(version_));
  std::memcpy(p + 8, digest_.data(), 32);
  put_u64(p + 40, static_cast<uint64_t>(audit_.seq));
  std::memcpy(p + 48, audit_.hash.data(), 32);
  std::memcpy(p + 80, identity_seed_.data(), 32);
  MOSS_ASSIGN_OR_RETURN(auto sealed, sealer_.seal(kMetaAad, plain.span()));
  MOSS_ASSIGN_OR_RETURN(Mac check, auth_.key_check());
  MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare(
      "INSERT OR REPLACE INTO state_meta (id, key_check, sealed) VALUES (1, ?, ?)"));
  st.bind_blob(1, check).bind_blob(2, sealed);
  return st.run();
}

Status StateStore::verify_all() {
  Mac acc{};
  for (const Table& t : tables_) {
    MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare("SELECT " + column_list(t) + " FROM " + t.name));
    while (true) {
      MOSS_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) break;
      int64_t row_version = 0;
      MOSS_ASSIGN_OR_RETURN(Row r, read_row(t, st, &row_version));
      MOSS_ASSIGN_OR_RETURN(Mac e, auth_.set_element(t.name, r, row_version));
      xor_into(acc, e);
    }
  }
  if (acc != digest_) {
    return tampered("state-rows-changed",
                    "rows were inserted, deleted or put back from an older copy of the state");
  }
  MOSS_ASSIGN_OR_RETURN(AuditHead head, verify_audit_chain(*db_, auth_.audit_key()));
  if (!(head == audit_)) {
    return tampered("audit-head-mismatch",
                    fmt::format("the audit log ends at event {}, the state recorded event {}",
                                head.seq, audit_.seq));
  }
  return Status::Ok();
}

Result<Row> StateStore::read_row(const Table& t, const Statement& st, int64_t* row_version) {
  Row r;
  r.reserve(t.columns.size());
  int i = 0;
  for (const Column& c : t.columns) {
    switch (c.kind) {
      case Column::kInt: r.push_back(std::to_string(st.column_int(i))); break;
      case Column::kText: r.push_back(st.column_text(i)); break;
      case Column::kBlob: {
        auto b = st.column_blob(i);
        r.emplace_back(b.begin(), b.end());
        break;
      }
    }
    ++i;
  }
  *row_version = st.column_int(i);
  auto mac = st.column_blob(i + 1);
  MOSS_ASSIGN_OR_RETURN(Mac expected, auth_.row_mac(t.name, r, *row_version));
  if (mac.size() != expected.size() ||
      std::memcmp(mac.data(), expected.data(), expected.size()) != 0 || *row_version > version_ ||
      *row_version < 1) {
    return tampered("state-row-altered",
                    fmt::format("a row of table {} does not authenticate", t.name));
  }
  return r;
}

Result<std::vector<Row>> StateStore::select(const Table& t, std::string_view where_sql,
                                            const Row& args) {
  MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare("SELECT " + column_list(t) + " FROM " + t.name +
                                              " WHERE " + std::string(where_sql)));
  for (size_t i = 0; i < args.size(); ++i) st.bind(static_cast<int>(i + 1), args[i]);
  std::vector<Row> out;
  while (true) {
    MOSS_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) break;
    int64_t v = 0;
    MOSS_ASSIGN_OR_RETURN(Row r, read_row(t, st, &v));
    out.push_back(std::move(r));
  }
  return out;
}

Status StateStore::insert(const Table& t, const Row& row) {
  if (!in_write_) return internal_error("StateStore::insert outside write()");
  if (row.size() != t.columns.size()) return internal_error("row of {} columns for table {}", row.size(), t.name);
  std::string marks;
  for (size_t i = 0; i < t.columns.size() + 2; ++i) marks += i ? ", ?" : "?";
  MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare(std::string("INSERT INTO ") + t.name + " (" +
                                              column_list(t) + ") VALUES (" + marks + ")"));
  for (size_t i = 0; i < row.size(); ++i) {
    int index = static_cast<int>(i + 1);
    switch (t.columns[i].kind) {
      case Column::kInt: st.bind(index, static_cast<int64_t>(std::stoll(row[i]))); break;
      case Column::kText: st.bind(index, row[i]); break;
      case Column::kBlob: st.bind_blob(index, as_bytes(row[i])); break;
    }
  }
  MOSS_ASSIGN_OR_RETURN(Mac mac, auth_.row_mac(t.name, row, version_));
  MOSS_ASSIGN_OR_RETURN(Mac element, auth_.set_element(t.name, row, version_));
  int n = static_cast<int>(row.size());
  st.bind(n + 1, version_).bind_blob(n + 2, mac);
  MOSS_RETURN_IF_ERROR(st.run());
  xor_into(digest_, element);
  return Status::Ok();
}

Result<int64_t> StateStore::remove(const Table& t, std::string_view where_sql, const Row& args) {
  if (!in_write_) return internal_error("StateStore::remove outside write()");
  // Read first (authenticated) to take each row's element out of the accumulator.
  MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare("SELECT " + column_list(t) + " FROM " + t.name +
                                              " WHERE " + std::string(where_sql)));
  for (size_t i = 0; i < args.size(); ++i) st.bind(static_cast<int>(i + 1), args[i]);
  int64_t n = 0;
  while (true) {
    MOSS_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) break;
    int64_t v = 0;
    MOSS_ASSIGN_OR_RETURN(Row r, read_row(t, st, &v));
    MOSS_ASSIGN_OR_RETURN(Mac element, auth_.set_element(t.name, r, v));
    xor_into(digest_, element);
    ++n;
  }
  MOSS_ASSIGN_OR_RETURN(auto del, db_->prepare(std::string("DELETE FROM ") + t.name + " WHERE " +
                                               std::string(where_sql)));
  for (size_t i = 0; i < args.size(); ++i) del.bind(static_cast<int>(i + 1), args[i]);
  MOSS_RETURN_IF_ERROR(del.run());
  if (db_->changes() != n) return internal_error("table {}: deleted {} rows, read {}", t.name, db_->changes(), n);
  return n;
}

Status StateStore::audit(const AuditEvent& event, int64_t time_ms) {
  if (!in_write_) return internal_error("StateStore::audit outside write()");
  MOSS_ASSIGN_OR_RETURN(AuditRecord r, append_audit_event(*db_, auth_.audit_key(), audit_, event, time_ms));
  audit_ = {r.seq, r.hash};
  return Status::Ok();
}

Status StateStore::write(const std::function<Status()>& body) {
  if (in_write_) return internal_error("nested StateStore::write");
  const int64_t saved_version = version_;
  const Mac saved_digest = digest_;
  const AuditHead saved_audit = audit_;
  in_write_ = true;
  ++version_;
  Status s = db_->transaction([&]() -> Status {
    MOSS_RETURN_IF_ERROR(body());
    return store_meta();
  });
  in_write_ = false;
  if (!s.ok()) {
    version_ = saved_version;
    digest_ = saved_digest;
    audit_ = saved_audit;
  }
  return s;
}

}  // namespace moss::store
