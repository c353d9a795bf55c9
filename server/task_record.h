#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "core/event_loop.h"
#include "core/task_handle.h"
#include "server/task_id.h"
#include "taskwire/v1/tasks.pb.h"

namespace taskwire::server {

namespace v1 = ::taskwire::v1;

// What rarely-set fields a task has, kept apart so that the common task
// (no name, labels or key) pays one pointer for them.
struct TaskExtras {
  std::string name;
  std::map<std::string, std::string> labels;
  std::string idempotency_key;
  std::string dispatch;  // A serialized v1::DispatchOptions; empty for none.
  std::string progress;  // A serialized Value: a worker's latest heartbeat details.
  std::string trace_id;  // W3C trace id of the request that created the task, for logs.
  // On the first task of a CreateTasks call made with an idempotency key:
  // the key, and how many tasks the call created (they follow this one).
  std::string batch_key;
  std::uint32_t batch_size = 0;
};

// The server's record of one task. Values are kept serialized: a task waits
// far longer than it is read, and bytes are smaller than parsed messages.
struct TaskRecord {
  TaskId id;
  std::string kind;
  std::string args;  // A serialized google.protobuf.Value; empty for none.
  v1::TaskState state = v1::TASK_STATE_PENDING;
  std::uint32_t attempt = 0;
  std::int64_t create_unix_nanos = 0;
  std::int64_t start_unix_nanos = 0;   // 0 until started.
  std::int64_t finish_unix_nanos = 0;  // 0 until finished.
  std::int64_t timeout_nanos = 0;      // 0 for none.
  std::string result;                  // A serialized Value, once SUCCEEDED.
  std::unique_ptr<v1::TaskError> error;
  std::unique_ptr<TaskExtras> extras;

  // Runtime state, on the loop thread only; not persisted.
  TaskHandle<void> runner;  // While the task has not finished.
  CallbackHandle deadline;  // The task's timeout, while armed.
  bool cancel_requested = false;
  bool timed_out = false;
  // A dispatched kind has the task: it may be PENDING while its runner runs.
  bool handed_over = false;
  // Taken over from a previous server process by recovery.
  bool recovered = false;

  bool finished() const noexcept {
    return state == v1::TASK_STATE_SUCCEEDED || state == v1::TASK_STATE_FAILED ||
           state == v1::TASK_STATE_CANCELLED;
  }
  // Finished, and its outcome stored: what awaiting clients are told. (A
  // finished task's runner is released once its outcome is stored.)
  bool settled() const noexcept { return finished() && !runner.valid(); }
  const std::string& idempotency_key() const;
  // The record as the wire API shows it, in full or only its outcome.
  void to_proto(v1::Task* task, v1::TaskView view = v1::TASK_VIEW_FULL) const;
};

}  // namespace taskwire::server
