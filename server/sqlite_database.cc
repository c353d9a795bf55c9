#include "server/sqlite_database.h"

#include <utility>

namespace taskwire::server {
namespace {

std::string describe_error(sqlite3* db, int code) {
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(code);
  const int extended = db != nullptr ? sqlite3_extended_errcode(db) : code;
  return std::string(message) + " (SQLite code " + std::to_string(extended) + ")";
}

std::string path_of(sqlite3* db) {
  const char* name = sqlite3_db_filename(db, "main");
  return name != nullptr ? name : "(unknown file)";
}

[[noreturn]] void fail_statement(sqlite3* db, std::string_view what) {
  throw StoreError(path_of(db) + ": " + std::string(what) + ": " + describe_error(db, 0));
}

}  // namespace

SqliteStatement::SqliteStatement(sqlite3* db, std::string_view sql) : db_(db) {
  if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                         &stmt_, nullptr) != SQLITE_OK) {
    fail_statement(db, "cannot prepare '" + std::string(sql) + "'");
  }
}

SqliteStatement& SqliteStatement::operator=(SqliteStatement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

void SqliteStatement::bind(int index, std::int64_t value) {
  if (sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK) fail_statement(db_, "cannot bind");
}

void SqliteStatement::bind_blob(int index, std::string_view bytes) {
  int rc = bytes.empty()
               ? sqlite3_bind_null(stmt_, index)
               : sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_STATIC);
  if (rc != SQLITE_OK) fail_statement(db_, "cannot bind");
}

void SqliteStatement::bind_text(int index, std::string_view text) {
  int rc = text.empty() ? sqlite3_bind_null(stmt_, index)
                        : sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_STATIC,
                                              SQLITE_UTF8);
  if (rc != SQLITE_OK) fail_statement(db_, "cannot bind");
}

bool SqliteStatement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  std::string sql = sqlite3_sql(stmt_);
  std::string message = describe_error(db_, rc);
  sqlite3_reset(stmt_);
  throw StoreError(path_of(db_) + ": '" + sql + "' failed: " + message);
}

void SqliteStatement::run() {
  while (step()) {
  }
  reset();
}

void SqliteStatement::reset() noexcept {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::string_view SqliteStatement::column_bytes(int index) const {
  const void* data = sqlite3_column_blob(stmt_, index);
  if (data == nullptr) return {};
  return {static_cast<const char*>(data),
          static_cast<std::size_t>(sqlite3_column_bytes(stmt_, index))};
}

SqliteDatabase::SqliteDatabase(std::string path) : path_(std::move(path)) {
  // NOMUTEX: one thread at a time uses the connection (the opener, then the
  // store's writer), so SQLite's own locking would be pure cost.
  int rc =
      sqlite3_open_v2(path_.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string reason = describe_error(db_, rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw StoreError(path_ + ": cannot open: " + reason);
  }
  sqlite3_extended_result_codes(db_, 1);
}

SqliteDatabase::~SqliteDatabase() { sqlite3_close_v2(db_); }

void SqliteDatabase::fail(std::string_view what) const {
  throw StoreError(path_ + ": " + std::string(what) + ": " + describe_error(db_, 0));
}

void SqliteDatabase::exec(const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    sqlite3_free(message);
    fail("'" + sql + "' failed");
  }
}

std::string SqliteDatabase::query_text(const std::string& sql) {
  SqliteStatement statement(db_, sql);
  if (!statement.step()) return {};
  std::string_view value = statement.column_bytes(0);
  return std::string(value);
}

std::int64_t SqliteDatabase::query_int(const std::string& sql) {
  SqliteStatement statement(db_, sql);
  return statement.step() ? statement.column_int(0) : 0;
}

}  // namespace taskwire::server
