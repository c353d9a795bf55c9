#pragma once

#include <grpcpp/support/status.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/event_loop.h"
#include "core/task.h"
#include "server/kind.h"
#include "server/limits.h"
#include "server/sent.h"
#include "server/task_id.h"
#include "server/task_observer.h"
#include "server/task_record.h"
#include "server/task_store.h"
#include "taskwire/v1/tasks.pb.h"

namespace taskwire::server {

// The task service's logic, on the loop thread and free of gRPC's calls:
// each method is one RPC, taking its request and filling its response, and
// answers with the RPC's status. Methods that wait are coroutines; the
// caller cancels them (CancelledError) when the client goes away, which
// leaves the tasks they waited for untouched.
class TaskManager {
 public:
  using Status = grpc::Status;
  // Sends one message of a server stream, taking its contents (the
  // message is left empty); gives false once the stream is gone.
  template <typename Message>
  using Emit = std::function<Sent(Message&)>;

  TaskManager(EventLoop& loop, const KindRegistry& kinds, TaskStore& store, Limits limits,
              std::uint64_t seed);
  TaskManager(const TaskManager&) = delete;
  TaskManager& operator=(const TaskManager&) = delete;
  ~TaskManager();

  // `trace_id` (of the calling request, if it had one) is kept with the
  // tasks created (TaskExtras::trace_id), for the logs about them.
  //
  // The creating calls take the args of the tasks they create out of their
  // request: each task's first step runs with them, rather than parsing or
  // copying them again.
  Task<Status> create_task(v1::CreateTaskRequest request, v1::Task* response,
                           const std::string* trace_id = nullptr);
  Task<Status> create_tasks(v1::CreateTasksRequest& request, v1::CreateTasksResponse* response,
                            const std::string* trace_id = nullptr);
  Status get_task(const v1::GetTaskRequest& request, v1::Task* response);
  Status list_tasks(const v1::ListTasksRequest& request, v1::ListTasksResponse* response);
  Task<Status> await_task(const v1::AwaitTaskRequest& request, v1::AwaitTaskResponse* response);
  Task<Status> run_task(v1::RunTaskRequest request, v1::AwaitTaskResponse* response,
                        const std::string* trace_id = nullptr);
  Task<Status> gather(const v1::GatherRequest& request, v1::GatherResponse* response);
  Task<Status> wait(const v1::WaitRequest& request, v1::WaitResponse* response);
  Task<Status> as_completed(const v1::AsCompletedRequest& request, Emit<v1::Task> emit);
  // AsCompletedBatches: as as_completed, a run of tasks per message.
  Task<Status> as_completed_batches(const v1::AsCompletedRequest& request,
                                    Emit<v1::TaskBatch> emit);
  Task<Status> cancel_task(const v1::CancelTaskRequest& request, v1::Task* response,
                           const std::string* trace_id = nullptr);
  Task<Status> watch_tasks(const v1::WatchTasksRequest& request, Emit<v1::TaskEvent> emit);

  // What recover() found in the store.
  struct Recovered {
    std::size_t finished = 0;  // Kept until their retention ends.
    std::size_t pending = 0;   // Pending again.
    std::size_t running = 0;   // Run again, as their next attempt.
  };
  // Takes over the tasks a previous server process left in the store, once,
  // before serving: finished tasks keep their retention, unfinished ones
  // run (or are dispatched) again and keep their timeouts.
  Recovered recover();

  // From now on new tasks are refused (UNAVAILABLE) and watch streams end.
  void stop_accepting();
  // From now on tasks that end because the loop stops are left as they
  // are in the store, for the next server process to take over, rather than
  // recorded as cancelled. Called once the drain is over.
  void leave_unfinished() noexcept { leaving_ = true; }
  std::size_t unfinished_count() const noexcept { return unfinished_; }
  const Limits& limits() const noexcept { return limits_; }
  // Tells `observer` (which must outlive the manager) of every task's
  // changes from now on.
  void add_observer(TaskObserver* observer) { observers_.push_back(observer); }

 private:
  class Watcher;
  struct Running;

  Status lookup(const std::string& text, const std::string& field, TaskRecord** out);
  Status lookup_all(const google::protobuf::RepeatedPtrField<std::string>& ids,
                    std::vector<TaskRecord*>* out);
  // An AsCompleted request, checked: its tasks once each, split into those
  // already settled (in request order) and those still running.
  struct Completions {
    std::vector<TaskRecord*> settled;
    std::vector<TaskRecord*> running;
    std::optional<Duration> timeout;
    v1::TaskView view = v1::TASK_VIEW_FULL;
  };
  Status check_as_completed(const v1::AsCompletedRequest& request, Completions* out);
  // CreateTask, naming fields with `prefix` (RunTask's is "task."): the
  // id of the task created, or found by its idempotency key.
  Task<Status> create_one(v1::CreateTaskRequest& request, std::string_view prefix, TaskId* id,
                          const std::string* trace_id);
  // AwaitTask, once the request is checked.
  Task<Status> await_one(TaskId id, std::optional<Duration> limit, v1::TaskView view,
                         v1::AwaitTaskResponse* response);
  // The idempotency key of a CreateTasks call, kept on its first task.
  struct BatchKey {
    const std::string& key;
    std::uint32_t size;
  };
  // `now`: the creation time (one reading of the clock for a whole batch);
  // `args`: the request's args, serialized (by validate_create).
  TaskRecord& add_record(const v1::CreateTaskRequest& request, std::string args, std::int64_t now,
                         const std::string* trace_id = nullptr, const BatchKey* batch = nullptr);
  // The ids of the tasks a keyed CreateTasks call created, from the first.
  Status keyed_batch(const TaskRecord& first, int tasks_in_request, std::vector<TaskId>* ids);
  void start(TaskRecord& record, Value args);
  Task<void> run(TaskRecord& record, Value args);
  void mark_running(TaskRecord& record);
  void report_attempts(TaskRecord& record, TaskContext& context);
  // For a built-in task run again after a restart: tells it how long ago
  // it first started.
  void tell_ran_before(const TaskRecord& record, TaskContext& context) const;
  void request_cancel(TaskRecord& record);
  void on_deadline(const TaskId& id);
  // True if the task ended only because the server is stopping.
  bool left_unfinished(const TaskRecord& record, const std::exception_ptr& error) const;
  void finish(TaskRecord& record, std::exception_ptr error, Value result);
  // Keeps a settled task for its retention.
  void retain(const TaskRecord& record);
  void notify(const TaskRecord& record, v1::TaskState previous);
  void schedule_sweep();
  void sweep();
  std::int64_t wall_now_nanos() const;
  void fill(const std::vector<TaskId>& ids, v1::TaskView view,
            google::protobuf::RepeatedPtrField<v1::Task>* out);

  EventLoop& loop_;
  const KindRegistry& kinds_;
  TaskStore& store_;
  Limits limits_;
  TaskIdGenerator ids_;
  std::int64_t wall_offset_nanos_;
  std::size_t unfinished_ = 0;
  bool accepting_ = true;
  bool leaving_ = false;
  std::deque<std::pair<TimePoint, TaskId>> finished_;  // In finishing order.
  CallbackHandle sweep_;
  bool sweep_armed_ = false;
  std::list<Watcher*> watchers_;
  std::vector<TaskObserver*> observers_;
};

}  // namespace taskwire::server
