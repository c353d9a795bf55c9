#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/event_loop.h"
#include "server/memory_task_store.h"
#include "server/sqlite_database.h"
#include "server/sqlite_task_writer.h"
#include "server/task_store.h"

namespace taskwire::server {

struct SqliteTaskStoreOptions {
  // Evicted ids remembered (in memory only) to tell "evicted" from "unknown".
  std::size_t evicted_ids_remembered = 1'000'000;
  // For tests: runs on the writer thread each time it finds work queued,
  // before it takes it.
  std::function<void()> before_transaction;
};

// Tasks kept in a SQLite database, DIR/taskwire.db, and so across restarts.
// Reads are served from memory (a MemoryTaskStore holding every record);
// each commit is written behind by a writer thread (see SqliteTaskWriter)
// and completes, on the loop, once it is durable: WAL with
// synchronous=FULL, so the WAL is fsynced at each transaction's commit.
// The file is locked for this process alone (locking_mode=EXCLUSIVE): a
// second taskwired on the same directory fails to open it.
//
// Each change writes the task's whole row, so a commit that failed (the
// caller sees a StoreError) is made good by the task's next commit.
class SqliteTaskStore final : public TaskStore {
 public:
  static constexpr const char* kFileName = "taskwire.db";

  // Creates `data_dir` if missing, opens or creates the database in it,
  // checks it (PRAGMA quick_check), brings its schema up to date and loads
  // every task. Throws StoreError, naming the path and the reason, if the
  // directory or the file cannot be used. `loop` must outlive the store.
  SqliteTaskStore(EventLoop& loop, const std::string& data_dir,
                  SqliteTaskStoreOptions options = {});
  // Writes what is still queued before it returns.
  ~SqliteTaskStore() override;

  std::string describe() const override;
  TaskRecord* find(const TaskId& id) override { return memory_.find(id); }
  TaskRecord* find_by_idempotency_key(std::string_view key) override {
    return memory_.find_by_idempotency_key(key);
  }
  TaskRecord* find_by_batch_key(std::string_view key) override {
    return memory_.find_by_batch_key(key);
  }
  TaskRecord& insert(std::unique_ptr<TaskRecord> record) override {
    return memory_.insert(std::move(record));
  }
  // Not coroutines: the records are read when these are called, not when
  // the task they return first runs.
  Task<void> commit(std::span<const TaskRecord* const> records) override;
  Task<void> commit_one(const TaskRecord& record) override;
  void commit_soon(const TaskRecord& record) override;
  void evict(const TaskId& id) override;
  bool evicted(const TaskId& id) const override { return memory_.evicted(id); }
  void scan(std::optional<TaskId> after,
            const std::function<bool(const TaskRecord&)>& visit) const override {
    memory_.scan(after, visit);
  }
  std::size_t size() const override { return memory_.size(); }

  const std::string& path() const noexcept { return path_; }
  // Tasks read at open, and how long opening took (checks included).
  std::size_t loaded() const noexcept { return loaded_; }
  double open_seconds() const noexcept { return open_seconds_; }
  // Transactions written since open.
  std::uint64_t transactions() const noexcept { return writer_->transactions(); }

 private:
  MemoryTaskStore memory_;
  std::string path_;
  std::size_t loaded_ = 0;
  double open_seconds_ = 0;
  std::unique_ptr<SqliteTaskWriter> writer_;
};

}  // namespace taskwire::server
