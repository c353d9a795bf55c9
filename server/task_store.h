#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/task.h"
#include "server/task_id.h"
#include "server/task_record.h"

namespace taskwire::server {

// Where task records live. The handlers read and change records in memory,
// on the loop thread, and call commit() after each change: a durable store
// completes it once the change is on disk (without blocking the loop); the
// in-memory store at once.
class TaskStore {
 public:
  virtual ~TaskStore() = default;

  // For the start-up log: what kind of store this is.
  virtual std::string describe() const = 0;

  virtual TaskRecord* find(const TaskId& id) = 0;
  virtual TaskRecord* find_by_idempotency_key(std::string_view key) = 0;
  // The first task of the CreateTasks call made with this key.
  virtual TaskRecord* find_by_batch_key(std::string_view key) = 0;
  virtual TaskRecord& insert(std::unique_ptr<TaskRecord> record) = 0;
  // Records the current state of these records (read before the first
  // suspension: the caller may change them again at once).
  virtual Task<void> commit(std::span<const TaskRecord* const> records) = 0;
  // The same for one record; keeps the caller's coroutine frame small.
  // Virtual so that a store can read the record when this is called rather
  // than when the returned task first runs (the caller may hand it to
  // create_task, which starts it on a later pass).
  virtual Task<void> commit_one(const TaskRecord& record) {
    const TaskRecord* one[] = {&record};
    co_await commit(one);
  }
  // Records the record's current state without waiting for it: for a change
  // that a crash may lose (recovery copes), such as a task starting. Kept
  // in order with the commits around it.
  virtual void commit_soon(const TaskRecord& record) = 0;
  // Forgets a finished task (retention ended); find() then returns null and
  // evicted() true, for a while.
  virtual void evict(const TaskId& id) = 0;
  virtual bool evicted(const TaskId& id) const = 0;
  // Calls `visit` for each record in id (creation) order, after `after` if
  // given, until it returns false.
  virtual void scan(std::optional<TaskId> after,
                    const std::function<bool(const TaskRecord&)>& visit) const = 0;
  virtual std::size_t size() const = 0;
};

}  // namespace taskwire::server
