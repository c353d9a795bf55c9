#pragma once

#include <absl/container/btree_map.h>

#include <deque>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "server/task_store.h"

namespace taskwire::server {

// Keeps everything in memory: fast, and gone when the process ends.
class MemoryTaskStore final : public TaskStore {
 public:
  // Remembers this many evicted ids, to tell "evicted" from "unknown".
  explicit MemoryTaskStore(std::size_t evicted_ids_remembered = 1'000'000)
      : tombstone_limit_(evicted_ids_remembered) {}

  std::string describe() const override { return "in-memory (tasks do not survive a restart)"; }
  TaskRecord* find(const TaskId& id) override;
  TaskRecord* find_by_idempotency_key(std::string_view key) override;
  TaskRecord* find_by_batch_key(std::string_view key) override;
  TaskRecord& insert(std::unique_ptr<TaskRecord> record) override;
  Task<void> commit(std::span<const TaskRecord* const>) override { co_return; }
  void commit_soon(const TaskRecord&) override {}
  void evict(const TaskId& id) override;
  bool evicted(const TaskId& id) const override { return tombstones_.contains(id); }
  void scan(std::optional<TaskId> after,
            const std::function<bool(const TaskRecord&)>& visit) const override;
  std::size_t size() const override { return records_.size(); }

 private:
  // A B-tree: ~25 bytes per task where a std::map node takes 64, and
  // creation appends at its end.
  absl::btree_map<TaskId, std::unique_ptr<TaskRecord>> records_;
  std::unordered_map<std::string, TaskId> by_idempotency_key_;
  std::unordered_map<std::string, TaskId> by_batch_key_;
  std::unordered_set<TaskId, TaskIdHash> tombstones_;
  std::deque<TaskId> tombstone_order_;
  std::size_t tombstone_limit_;
};

}  // namespace taskwire::server
