#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace taskwire::server {

// A task store that cannot be opened or written; the message names the
// file and the reason.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One prepared statement; reset after each use so that it can run again.
class SqliteStatement {
 public:
  SqliteStatement() = default;
  SqliteStatement(sqlite3* db, std::string_view sql);
  SqliteStatement(SqliteStatement&& other) noexcept : db_(other.db_), stmt_(other.stmt_) {
    other.stmt_ = nullptr;
  }
  SqliteStatement& operator=(SqliteStatement&& other) noexcept;
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;
  ~SqliteStatement() { sqlite3_finalize(stmt_); }

  sqlite3_stmt* get() const noexcept { return stmt_; }
  // Binds by position (1-based). Text and blobs are not copied: they must
  // outlive the next step(). Empty blobs and texts bind as NULL.
  void bind(int index, std::int64_t value);
  void bind_blob(int index, std::string_view bytes);
  void bind_text(int index, std::string_view text);
  // True while there is a row to read; false when done. Throws on error.
  bool step();
  // Runs a statement that returns no rows, then resets it.
  void run();
  void reset() noexcept;

  std::int64_t column_int(int index) const { return sqlite3_column_int64(stmt_, index); }
  // A view of the column's bytes, valid until the next step(); empty for NULL.
  std::string_view column_bytes(int index) const;

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// An open SQLite connection, used by one thread at a time (it is opened
// with SQLITE_OPEN_NOMUTEX). Errors are thrown as StoreError naming the
// file.
class SqliteDatabase {
 public:
  // Opens (creating if missing) the database file at `path`.
  explicit SqliteDatabase(std::string path);
  SqliteDatabase(SqliteDatabase&& other) noexcept : path_(std::move(other.path_)), db_(other.db_) {
    other.db_ = nullptr;
  }
  SqliteDatabase(const SqliteDatabase&) = delete;
  SqliteDatabase& operator=(const SqliteDatabase&) = delete;
  SqliteDatabase& operator=(SqliteDatabase&&) = delete;
  ~SqliteDatabase();

  sqlite3* get() const noexcept { return db_; }
  const std::string& path() const noexcept { return path_; }

  // Runs one or more statements that return no rows.
  void exec(const std::string& sql);
  // Runs a statement returning one value (a PRAGMA's, say), as text.
  std::string query_text(const std::string& sql);
  std::int64_t query_int(const std::string& sql);
  SqliteStatement prepare(std::string_view sql) { return SqliteStatement(db_, sql); }

  // "<path>: <what>: <SQLite's message> (<error code name>)".
  [[noreturn]] void fail(std::string_view what) const;

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace taskwire::server
