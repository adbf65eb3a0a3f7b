// Database: the one place that calls SQLite (style: net and store each wrap their C library once).
//
// Opened in WAL mode with synchronous=FULL: a commit returns only after its WAL frames are
// fsync'ed, so an acknowledged write survives kill -9 and power loss. (NORMAL would survive a
// process kill too, since the WAL is in the OS page cache, but not a power cut; the KeyService
// writes little, so FULL costs one fsync per transaction and is worth it.)
//
// Not thread-safe: one connection, to be used by one thread at a time. Callers serialise with
// their own mutex (the KeyService holds one around each transaction).
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace moss::store {

class Database;

// A prepared statement with positional (1-based) parameters. Not thread-safe.
class Statement {
 public:
  Statement(Statement&&) noexcept;
  Statement& operator=(Statement&&) noexcept;
  ~Statement();

  Statement& bind(int index, int64_t value);
  Statement& bind(int index, std::string_view text);
  Statement& bind_blob(int index, std::span<const uint8_t> bytes);

  // Steps once: true when a row is available, false when done.
  Result<bool> step();
  // Runs to completion (for statements without rows).
  Status run();

  int64_t column_int(int index) const;
  std::string column_text(int index) const;
  std::vector<uint8_t> column_blob(int index) const;

 private:
  friend class Database;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  Status bind_error_;  // the first binding error, reported by step()
};

// One schema step: applied in order, each in its own transaction, recorded in PRAGMA user_version.
struct Migration {
  int version;           // 1, 2, 3, ...
  std::string_view sql;  // may hold several statements
};

class Database {
 public:
  // Opens (creating) the database file, enables WAL, synchronous=FULL, foreign keys and a busy
  // timeout. The file and its WAL are created with mode 0600.
  static Result<std::unique_ptr<Database>> open(const std::filesystem::path& path);
  // A second, read-only connection to a database another connection opened (WAL lets it read
  // while that one writes): for long queries that must not hold the writer's lock.
  static Result<std::unique_ptr<Database>> open_reader(const std::filesystem::path& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Status exec(std::string_view sql);
  Result<Statement> prepare(std::string_view sql);

  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT; rolls back when it returns an error.
  Status transaction(const std::function<Status()>& body);

  // Brings the schema up to the last migration; fails (data-loss) when the file is newer than the
  // migrations this binary knows.
  Status migrate(std::span<const Migration> migrations);
  Result<int> schema_version();

  int64_t changes() const;  // rows changed by the latest statement

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};
using DatabasePtr = std::unique_ptr<Database>;

}  // namespace moss::store
