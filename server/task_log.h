#pragma once

#include "server/task_observer.h"

namespace taskwire::server {

// Logs what happens to each task at debug level: created, started (each
// attempt, for tasks that workers run), back to waiting, finished with its
// outcome, and cancellation asked. Each line carries the task's id and the
// trace id of the request that created it (or, for a cancellation, of the
// request that asked for it) as LogFields. Installed only when debug lines
// are logged at all, so that other levels pay nothing per task.
class TaskLog final : public TaskObserver {
 public:
  void on_transition(const TaskRecord& record, v1::TaskState previous) override;
  void on_cancel_requested(const TaskRecord& record, const std::string* trace_id) override;
};

}  // namespace taskwire::server
