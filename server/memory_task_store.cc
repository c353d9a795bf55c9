#include "server/memory_task_store.h"

namespace taskwire::server {

TaskRecord* MemoryTaskStore::find(const TaskId& id) {
  auto it = records_.find(id);
  return it == records_.end() ? nullptr : it->second.get();
}

TaskRecord* MemoryTaskStore::find_by_idempotency_key(std::string_view key) {
  auto it = by_idempotency_key_.find(std::string(key));
  return it == by_idempotency_key_.end() ? nullptr : find(it->second);
}

TaskRecord* MemoryTaskStore::find_by_batch_key(std::string_view key) {
  auto it = by_batch_key_.find(std::string(key));
  return it == by_batch_key_.end() ? nullptr : find(it->second);
}

TaskRecord& MemoryTaskStore::insert(std::unique_ptr<TaskRecord> record) {
  TaskRecord& inserted = *record;
  if (!inserted.idempotency_key().empty())
    by_idempotency_key_[inserted.idempotency_key()] = inserted.id;
  if (inserted.extras && !inserted.extras->batch_key.empty())
    by_batch_key_[inserted.extras->batch_key] = inserted.id;
  records_.emplace(inserted.id, std::move(record));
  return inserted;
}

void MemoryTaskStore::evict(const TaskId& id) {
  auto it = records_.find(id);
  if (it == records_.end()) return;
  if (!it->second->idempotency_key().empty())
    by_idempotency_key_.erase(it->second->idempotency_key());
  if (it->second->extras && !it->second->extras->batch_key.empty())
    by_batch_key_.erase(it->second->extras->batch_key);
  records_.erase(it);
  if (tombstone_limit_ == 0) return;
  if (tombstone_order_.size() == tombstone_limit_) {
    tombstones_.erase(tombstone_order_.front());
    tombstone_order_.pop_front();
  }
  tombstones_.insert(id);
  tombstone_order_.push_back(id);
}

void MemoryTaskStore::scan(std::optional<TaskId> after,
                           const std::function<bool(const TaskRecord&)>& visit) const {
  auto it = after ? records_.upper_bound(*after) : records_.begin();
  for (; it != records_.end(); ++it) {
    if (!visit(*it->second)) return;
  }
}

}  // namespace taskwire::server
