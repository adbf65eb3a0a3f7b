#include "store/database.h"

#include <sqlite3.h>
#include <sys/stat.h>

namespace moss::store {

namespace {
Status sqlite_error(sqlite3* db, int rc, std::string_view what) {
  std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if (rc == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_CONSTRAINT) {
    return already_exists("{}: {}", what, msg);
  }
  if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB) {
    return data_loss("{}: {}", what, msg);
  }
  return internal_error("{}: sqlite: {}", what, msg);
}
}  // namespace

Statement::Statement(Statement&& o) noexcept
    : db_(o.db_), stmt_(o.stmt_), bind_error_(std::move(o.bind_error_)) {
  o.stmt_ = nullptr;
}
Statement& Statement::operator=(Statement&& o) noexcept {
  if (this != &o) {
    if (stmt_) sqlite3_finalize(stmt_);
    db_ = o.db_;
    stmt_ = o.stmt_;
    bind_error_ = std::move(o.bind_error_);
    o.stmt_ = nullptr;
  }
  return *this;
}
Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Statement& Statement::bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = sqlite_error(db_, rc, "bind");
  return *this;
}
Statement& Statement::bind(int index, std::string_view text) {
  int rc = sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = sqlite_error(db_, rc, "bind");
  return *this;
}
Statement& Statement::bind_blob(int index, std::span<const uint8_t> bytes) {
  static const uint8_t kEmpty = 0;
  int rc = sqlite3_bind_blob64(stmt_, index, bytes.empty() ? &kEmpty : bytes.data(), bytes.size(),
                               SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = sqlite_error(db_, rc, "bind");
  return *this;
}

Result<bool> Statement::step() {
  if (!bind_error_.ok()) return bind_error_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqlite_error(db_, rc, "step");
}

Status Statement::run() {
  while (true) {
    MOSS_ASSIGN_OR_RETURN(bool row, step());
    if (!row) return Status::Ok();
  }
}

int64_t Statement::column_int(int index) const { return sqlite3_column_int64(stmt_, index); }
std::string Statement::column_text(int index) const {
  const unsigned char* p = sqlite3_column_text(stmt_, index);
  int n = sqlite3_column_bytes(stmt_, index);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}
std::vector<uint8_t> Statement::column_blob(int index) const {
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, index));
  int n = sqlite3_column_bytes(stmt_, index);
  return p ? std::vector<uint8_t>(p, p + n) : std::vector<uint8_t>();
}

Result<DatabasePtr> Database::open(const std::filesystem::path& path) {
  // SQLite creates the file and its -wal/-shm siblings with the process umask; keep them private.
  mode_t old_mask = ::umask(077);
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  ::umask(old_mask);
  DatabasePtr db(new Database(raw));
  if (rc != SQLITE_OK) return sqlite_error(raw, rc, "opening " + path.string());
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, 5000);
  MOSS_RETURN_IF_ERROR(db->exec("PRAGMA journal_mode=WAL"));
  MOSS_RETURN_IF_ERROR(db->exec("PRAGMA synchronous=FULL"));
  MOSS_RETURN_IF_ERROR(db->exec("PRAGMA foreign_keys=ON"));
  // Check that WAL really is on (it is not on some file systems); durability reasoning depends on it.
  MOSS_ASSIGN_OR_RETURN(auto st, db->prepare("PRAGMA journal_mode"));
  MOSS_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row || st.column_text(0) != "wal") {
    return failed_precondition("{}: WAL journal mode not available", path.string());
  }
  return db;
}

Result<DatabasePtr> Database::open_reader(const std::filesystem::path& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  DatabasePtr db(new Database(raw));
  if (rc != SQLITE_OK) return sqlite_error(raw, rc, "opening " + path.string() + " to read");
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, 5000);
  return db;
}

Database::~Database() {
  if (db_) sqlite3_close_v2(db_);
}

Status Database::exec(std::string_view sql) {
  std::string text(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) return already_exists("sqlite: {}", msg);
    return internal_error("sqlite: {}", msg);
  }
  return Status::Ok();
}

Result<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db_, rc, "prepare");
  return Statement(db_, stmt);
}

Status Database::transaction(const std::function<Status()>& body) {
  MOSS_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE"));
  Status s = body();
  if (!s.ok()) {
    (void)exec("ROLLBACK");
    return s;
  }
  Status c = exec("COMMIT");
  if (!c.ok()) (void)exec("ROLLBACK");
  return c;
}

Result<int> Database::schema_version() {
  MOSS_ASSIGN_OR_RETURN(auto st, prepare("PRAGMA user_version"));
  MOSS_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) return internal_error("PRAGMA user_version returned nothing");
  return static_cast<int>(st.column_int(0));
}

Status Database::migrate(std::span<const Migration> migrations) {
  MOSS_ASSIGN_OR_RETURN(int current, schema_version());
  int latest = migrations.empty() ? 0 : migrations.back().version;
  if (current > latest) {
    return data_loss("database schema version {} is newer than this binary knows ({})", current,
                     latest);
  }
  for (const Migration& m : migrations) {
    if (m.version <= current) continue;
    MOSS_RETURN_IF_ERROR(transaction([&]() -> Status {
      MOSS_RETURN_IF_ERROR(exec(m.sql));
      return exec("PRAGMA user_version=" + std::to_string(m.version));
    }).with_context("migration " + std::to_string(m.version)));
  }
  return Status::Ok();
}

int64_t Database::changes() const { return sqlite3_changes64(db_); }

}  // namespace moss::store
