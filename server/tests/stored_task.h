#pragma once

#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/clock.h"
#include "server/task_id.h"
#include "server/task_record.h"
#include "server/task_store.h"

namespace taskwire::server {

// A task as a durable store hands it back when the server restarts: times
// are given as how long before now they happened (by the wall clock).
struct StoredTask {
  std::string kind{};
  std::string args_json{};  // Empty for no args.
  v1::TaskState state = v1::TASK_STATE_PENDING;
  std::uint32_t attempt = 0;
  Duration created_ago{};
  Duration started_ago{};     // Zero: never started.
  Duration finished_ago{};    // For a finished task.
  Duration timeout{};         // Zero: none.
  std::string result_json{};  // For a SUCCEEDED task.
  std::string idempotency_key{};
  std::uint32_t maximum_attempts = 0;  // Non-zero: a retry policy.
};

inline std::int64_t unix_nanos_ago(Duration ago) {
  auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return now.count() - std::chrono::duration_cast<std::chrono::nanoseconds>(ago).count();
}

inline std::string serialized_value(const std::string& json) {
  google::protobuf::Value value;
  if (!google::protobuf::util::JsonStringToMessage(json, &value).ok()) return "";
  return value.SerializeAsString();
}

// Puts `task` into `store`; gives its id.
inline std::string store_task(TaskStore& store, const StoredTask& task) {
  static TaskIdGenerator ids(1);
  auto record = std::make_unique<TaskRecord>();
  record->create_unix_nanos = unix_nanos_ago(task.created_ago);
  record->id = ids.next(record->create_unix_nanos / 1'000'000);
  record->kind = task.kind;
  if (!task.args_json.empty()) record->args = serialized_value(task.args_json);
  record->state = task.state;
  record->attempt = task.attempt;
  if (task.started_ago != Duration::zero())
    record->start_unix_nanos = unix_nanos_ago(task.started_ago);
  if (record->finished()) record->finish_unix_nanos = unix_nanos_ago(task.finished_ago);
  record->timeout_nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(task.timeout).count();
  if (!task.result_json.empty()) record->result = serialized_value(task.result_json);
  if (!task.idempotency_key.empty() || task.maximum_attempts != 0) {
    record->extras = std::make_unique<TaskExtras>();
    record->extras->idempotency_key = task.idempotency_key;
    if (task.maximum_attempts != 0) {
      v1::DispatchOptions dispatch;
      dispatch.mutable_retry_policy()->set_maximum_attempts(task.maximum_attempts);
      dispatch.SerializeToString(&record->extras->dispatch);
    }
  }
  return store.insert(std::move(record)).id.to_string();
}

}  // namespace taskwire::server
