#include "server/sqlite_task_writer.h"

#include <spdlog/spdlog.h>

#include <unordered_set>

namespace taskwire::server {

SqliteTaskWriter::SqliteTaskWriter(SqliteDatabase db, EventLoop& loop,
                                   std::function<void()> before_transaction)
    : db_(std::move(db)),
      loop_(loop),
      before_transaction_(std::move(before_transaction)),
      begin_(db_.prepare("BEGIN IMMEDIATE")),
      commit_(db_.prepare("COMMIT")),
      rollback_(db_.prepare("ROLLBACK")),
      upsert_(db_.prepare(kUpsertTaskSql)),
      delete_(db_.prepare(kDeleteTaskSql)),
      thread_([this] { run(); }) {}

SqliteTaskWriter::~SqliteTaskWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

std::shared_ptr<SqliteTaskWriter::Group> SqliteTaskWriter::write(
    std::span<const TaskRecord* const> records) {
  std::shared_ptr<Group> group;
  {
    std::lock_guard lock(mutex_);
    for (const TaskRecord* record : records) queued_.push_back({TaskRow::snapshot(*record)});
    if (!open_group_) open_group_ = std::make_shared<Group>();
    group = open_group_;
  }
  wake_.notify_one();
  return group;
}

void SqliteTaskWriter::remove(const TaskId& id) {
  {
    std::lock_guard lock(mutex_);
    Change& change = queued_.emplace_back();
    change.row.id = id;
    change.remove = true;
  }
  wake_.notify_one();
}

void SqliteTaskWriter::run() {
  std::vector<Change> changes;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return !queued_.empty() || stopping_; });
      if (queued_.empty()) return;  // Stopping, and everything is written.
    }
    if (before_transaction_) before_transaction_();
    std::shared_ptr<Group> group;
    {
      std::lock_guard lock(mutex_);
      changes.swap(queued_);
      group = std::move(open_group_);
    }
    std::string error = write_transaction(changes);
    changes.clear();
    transactions_.fetch_add(1);
    if (!error.empty()) spdlog::error("task store: {}", error);
    if (group) {
      loop_.post([group = std::move(group), error = std::move(error)]() mutable {
        group->error = std::move(error);
        group->done.set();
      });
    }
  }
}

std::string SqliteTaskWriter::write_transaction(std::vector<Change>& changes) {
  // A task changed several times since the last transaction needs only its
  // last change written: mark the earlier ones.
  std::vector<bool> superseded(changes.size());
  if (changes.size() > 1) {
    std::unordered_set<TaskId, TaskIdHash> seen;
    seen.reserve(changes.size());
    for (std::size_t i = changes.size(); i-- > 0;)
      superseded[i] = !seen.insert(changes[i].row.id).second;
  }
  std::string scratch;
  char id[16];
  try {
    begin_.run();
    for (std::size_t i = 0; i < changes.size(); ++i) {
      if (superseded[i]) continue;
      if (changes[i].remove) {
        bind_id(delete_, 1, changes[i].row.id, id);
        delete_.run();
      } else {
        bind_row(upsert_, changes[i].row, scratch);
        upsert_.run();
      }
    }
    commit_.run();
    return {};
  } catch (const StoreError& e) {
    if (!sqlite3_get_autocommit(db_.get())) {
      try {
        rollback_.run();
      } catch (const StoreError& rollback_error) {
        spdlog::error("task store: {}", rollback_error.what());
      }
    }
    return e.what();
  }
}

}  // namespace taskwire::server
