#include "server/sqlite_task_store.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "server/sqlite_task_row.h"
#include "server/sqlite_task_schema.h"

namespace taskwire::server {
namespace {

namespace fs = std::filesystem;

std::string make_data_dir(const std::string& data_dir) {
  if (data_dir.empty()) throw StoreError("task store: the data directory must not be empty");
  std::error_code error;
  fs::create_directories(data_dir, error);
  if (error) {
    throw StoreError(data_dir + ": cannot create the data directory: " + error.message());
  }
  if (!fs::is_directory(data_dir, error)) {
    throw StoreError(data_dir + ": is not a directory");
  }
  return (fs::path(data_dir) / SqliteTaskStore::kFileName).string();
}

// Opens the file for this process alone, in WAL mode, checked and with its
// schema up to date.
SqliteDatabase open_database(const std::string& path) {
  std::error_code error;
  if (fs::exists(path, error) && !fs::is_regular_file(path, error))
    throw StoreError(path + ": is not a regular file");
  SqliteDatabase db(path);
  // Before WAL is entered: with an exclusive lock, the WAL index lives in
  // this process's memory and no other process can open the file.
  db.exec("PRAGMA locking_mode = EXCLUSIVE");
  // The first statement that reads the file: a file that is not a
  // database, or that another process holds, fails here.
  std::string mode;
  try {
    mode = db.query_text("PRAGMA journal_mode = WAL");
  } catch (const StoreError&) {
    const int code = sqlite3_errcode(db.get());
    const std::string reason =
        std::string(sqlite3_errmsg(db.get())) + " (SQLite code " + std::to_string(code) + ")";
    if (code == SQLITE_BUSY) {
      throw StoreError(path +
                       ": is in use by another process (another taskwired on this data "
                       "directory?): " +
                       reason);
    }
    if (code == SQLITE_NOTADB) throw StoreError(path + ": is not a SQLite database: " + reason);
    throw StoreError(path + ": cannot be read: " + reason);
  }
  if (mode != "wal") throw StoreError(path + ": cannot switch to WAL mode (got '" + mode + "')");
  // FULL: the WAL is fsynced at every commit, so a commit that completed
  // survives a power loss, not only a crash of the process.
  db.exec("PRAGMA synchronous = FULL");
  // The writer checkpoints (copies the WAL into the file, and fsyncs it)
  // once the WAL holds this many pages: every 40 MB rather than SQLite's
  // 4 MB, so that a task's rows, rewritten at each change, are mostly
  // copied once, and the writer stalls on the file's fsync ten times less.
  db.exec("PRAGMA wal_autocheckpoint = 10000");
  // Deleted rows leave free pages that later rows reuse; keep the WAL from
  // staying large after a burst (it is truncated to this after a checkpoint).
  db.exec("PRAGMA journal_size_limit = 67108864");
  std::string check = db.query_text("PRAGMA quick_check");
  if (check != "ok") throw StoreError(path + ": fails its integrity check (quick_check): " + check);
  migrate(db, task_store_migrations());
  return db;
}

}  // namespace

SqliteTaskStore::SqliteTaskStore(EventLoop& loop, const std::string& data_dir,
                                 SqliteTaskStoreOptions options)
    : memory_(options.evicted_ids_remembered), path_(make_data_dir(data_dir)) {
  const auto start = std::chrono::steady_clock::now();
  SqliteDatabase db = open_database(path_);
  {
    SqliteStatement select = db.prepare(kSelectTasksSql);
    while (select.step()) {
      memory_.insert(read_row(select, path_));
      ++loaded_;
    }
  }
  open_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  writer_ = std::make_unique<SqliteTaskWriter>(std::move(db), loop,
                                               std::move(options.before_transaction));
}

SqliteTaskStore::~SqliteTaskStore() = default;

std::string SqliteTaskStore::describe() const {
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.3f", open_seconds_);
  return "durable, SQLite at " + path_ + " (" + std::to_string(loaded_) + " task(s) loaded in " +
         seconds + " s)";
}

namespace {

Task<void> wait_for_group(std::shared_ptr<SqliteTaskWriter::Group> group) {
  if (!group) co_return;
  co_await group->done.wait();
  if (!group->error.empty()) throw StoreError("task store: commit failed: " + group->error);
}

}  // namespace

Task<void> SqliteTaskStore::commit(std::span<const TaskRecord* const> records) {
  if (records.empty()) return wait_for_group(nullptr);
  return wait_for_group(writer_->write(records));
}

Task<void> SqliteTaskStore::commit_one(const TaskRecord& record) {
  const TaskRecord* one[] = {&record};
  return wait_for_group(writer_->write(one));
}

void SqliteTaskStore::commit_soon(const TaskRecord& record) {
  const TaskRecord* one[] = {&record};
  // A failure is made good by the task's next commit, which writes its row.
  writer_->write(one);
}

void SqliteTaskStore::evict(const TaskId& id) {
  if (memory_.find(id) == nullptr) return;
  // Before the record goes: `id` may be the record's own.
  writer_->remove(id);
  memory_.evict(TaskId(id));
}

}  // namespace taskwire::server
