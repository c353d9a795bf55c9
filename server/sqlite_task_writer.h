#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/event.h"
#include "core/event_loop.h"
#include "server/sqlite_database.h"
#include "server/sqlite_task_row.h"

namespace taskwire::server {

// The task store's writer thread. It owns the SQLite connection, so the
// loop never waits on the disk: the loop queues rows (snapshots) and
// deletions, and the writer writes everything queued in one transaction
// (group commit: one fsync for all the commits that queued while the
// previous transaction was being written), then completes that group's
// commits by posting to the loop.
class SqliteTaskWriter {
 public:
  // The commits that go into one transaction. Loop thread only.
  struct Group {
    Event done;         // Set on the loop once the transaction ended.
    std::string error;  // Empty if it was committed.
  };

  // `before_transaction`, for tests: runs on the writer thread each time
  // it finds work queued, before it takes it.
  SqliteTaskWriter(SqliteDatabase db, EventLoop& loop, std::function<void()> before_transaction);
  SqliteTaskWriter(const SqliteTaskWriter&) = delete;
  SqliteTaskWriter& operator=(const SqliteTaskWriter&) = delete;
  // Writes what is still queued, then stops the thread and closes the file.
  // Groups completed from here on are posted to the loop, which must
  // outlive the writer.
  ~SqliteTaskWriter();

  // Loop thread: snapshots `records` at once and queues them; the group
  // they joined is done once they are durable (or the transaction failed).
  std::shared_ptr<Group> write(std::span<const TaskRecord* const> records);
  // Loop thread: queues the deletion of a task's row, in the next
  // transaction after the writes queued before it.
  void remove(const TaskId& id);

  // Transactions committed or failed so far, from any thread.
  std::uint64_t transactions() const noexcept { return transactions_.load(); }

 private:
  struct Change {
    TaskRow row;  // Only the id, for a deletion.
    bool remove = false;
  };

  void run();
  // Writes one group of changes in one transaction; the error, or "".
  std::string write_transaction(std::vector<Change>& changes);

  SqliteDatabase db_;
  EventLoop& loop_;
  std::function<void()> before_transaction_;
  SqliteStatement begin_;
  SqliteStatement commit_;
  SqliteStatement rollback_;
  SqliteStatement upsert_;
  SqliteStatement delete_;
  std::atomic<std::uint64_t> transactions_{0};

  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Change> queued_;         // Guarded by mutex_.
  std::shared_ptr<Group> open_group_;  // Guarded by mutex_; null until a write.
  bool stopping_ = false;              // Guarded by mutex_.
  std::thread thread_;                 // Last: starts once the rest is ready.
};

}  // namespace taskwire::server
