#pragma once

#include <string>

#include "server/task_record.h"

namespace taskwire::server {

// Told of what happens to tasks, on the loop thread, as it happens (metrics
// and per-task logs). Called synchronously from the TaskManager: must not
// change the record, suspend or throw, and should cost little, since every
// task passes here several times.
class TaskObserver {
 public:
  virtual ~TaskObserver() = default;
  // The record's state has just changed (or its attempt, for tasks that
  // workers run). `previous` is TASK_STATE_UNSPECIFIED for a task just
  // created. A finished record has its finish time, error or result set.
  virtual void on_transition(const TaskRecord& record, v1::TaskState previous) = 0;
  // A CancelTask call asked for the task's cancellation; `trace_id` is the
  // calling request's (null if it had none).
  virtual void on_cancel_requested(const TaskRecord& record, const std::string* trace_id) {
    (void)record;
    (void)trace_id;
  }
};

}  // namespace taskwire::server
