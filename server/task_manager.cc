#include "server/task_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "core/as_completed.h"
#include "core/errors.h"
#include "core/queue.h"
#include "core/wait.h"
#include "server/request_validation.h"

namespace taskwire::server {
namespace {

using grpc::StatusCode;

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

// How a runner tells the loop's combinators that its task failed; the
// record says how.
class TaskFailedMarker : public std::exception {
 public:
  const char* what() const noexcept override { return "task failed"; }
};

std::string seconds_text(std::int64_t nanos) {
  char text[32];
  std::snprintf(text, sizeof text, "%gs", static_cast<double>(nanos) / 1e9);
  return text;
}

v1::TaskError make_error(std::string type, std::string message) {
  v1::TaskError error;
  error.set_type(std::move(type));
  error.set_message(std::move(message));
  return error;
}

grpc::Status check_states(const google::protobuf::RepeatedField<int>& states, std::uint32_t* mask) {
  *mask = 0;
  for (int i = 0; i < states.size(); ++i) {
    int state = states[i];
    if (state <= v1::TASK_STATE_UNSPECIFIED || state > v1::TASK_STATE_CANCELLED) {
      return invalid("states[" + std::to_string(i) + "]", "unknown state " + std::to_string(state));
    }
    *mask |= 1u << state;
  }
  return grpc::Status::OK;
}

bool labels_match(const TaskRecord& record,
                  const google::protobuf::Map<std::string, std::string>& wanted) {
  if (wanted.empty()) return true;
  if (!record.extras) return false;
  for (const auto& [key, value] : wanted) {
    auto it = record.extras->labels.find(key);
    if (it == record.extras->labels.end() || it->second != value) return false;
  }
  return true;
}

std::vector<TaskHandle<void>> runners_of(const std::vector<TaskRecord*>& records) {
  std::vector<TaskHandle<void>> runners;
  for (TaskRecord* record : records) {
    if (!record->settled()) runners.push_back(record->runner);
  }
  return runners;
}

// The records once each, in order of first appearance. Sorted copies
// rather than a hash set: two allocations for a request of 10,000 ids, not
// one per id.
std::vector<TaskRecord*> unique(const std::vector<TaskRecord*>& records) {
  std::vector<std::pair<TaskRecord*, std::size_t>> by_record(records.size());
  for (std::size_t i = 0; i < records.size(); ++i) by_record[i] = {records[i], i};
  std::sort(by_record.begin(), by_record.end());
  std::vector<std::size_t> firsts;
  firsts.reserve(records.size());
  for (std::size_t i = 0; i < by_record.size(); ++i) {
    if (i == 0 || by_record[i].first != by_record[i - 1].first)
      firsts.push_back(by_record[i].second);
  }
  if (firsts.size() == records.size()) return records;
  std::sort(firsts.begin(), firsts.end());
  std::vector<TaskRecord*> out;
  out.reserve(firsts.size());
  for (std::size_t i : firsts) out.push_back(records[i]);
  return out;
}

// Which task a runner that as_completed yields belongs to: a sorted vector,
// not a hash map (one allocation, not one per task).
class RunnerIds {
 public:
  explicit RunnerIds(const std::vector<TaskRecord*>& records) {
    ids_.reserve(records.size());
    for (const TaskRecord* record : records) ids_.emplace_back(record->runner.state(), record->id);
    std::sort(ids_.begin(), ids_.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  const TaskId& at(const detail::TaskStateBase* runner) const {
    auto it =
        std::lower_bound(ids_.begin(), ids_.end(), runner,
                         [](const auto& entry, const auto* key) { return entry.first < key; });
    if (it == ids_.end() || it->first != runner)
      throw std::out_of_range("RunnerIds: no such runner");
    return it->second;
  }

 private:
  std::vector<std::pair<const detail::TaskStateBase*, TaskId>> ids_;
};

// GCC 12 cannot keep an initializer list alive across a co_await, so
// one-element vectors are built by a function call.
std::vector<TaskHandle<void>> just(const TaskHandle<void>& runner) {
  return std::vector<TaskHandle<void>>(1, runner);
}

std::vector<TaskId> ids_of(const std::vector<TaskRecord*>& records) {
  std::vector<TaskId> ids;
  ids.reserve(records.size());
  for (TaskRecord* record : records) ids.push_back(record->id);
  return ids;
}

}  // namespace

// A WatchTasks stream's filter and backlog of events.
class TaskManager::Watcher {
 public:
  std::unordered_set<TaskId, TaskIdHash> ids;
  std::uint32_t states = 0;  // Bit per state; 0 for all.
  std::string kind;
  google::protobuf::Map<std::string, std::string> labels;
  // nullopt wakes the stream to look at `closed` and `overflowed`.
  Queue<std::optional<v1::TaskEvent>> events;
  bool closed = false;
  bool overflowed = false;

  bool matches(const TaskRecord& record) const {
    if (!ids.empty() && !ids.contains(record.id)) return false;
    if (states != 0 && (states & (1u << record.state)) == 0) return false;
    if (!kind.empty() && kind != record.kind) return false;
    return labels_match(record, labels);
  }
};

TaskManager::TaskManager(EventLoop& loop, const KindRegistry& kinds, TaskStore& store,
                         Limits limits, std::uint64_t seed)
    : loop_(loop), kinds_(kinds), store_(store), limits_(limits), ids_(seed) {
  auto wall = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  wall_offset_nanos_ = wall.count() - loop_.now().time_since_epoch().count();
}

TaskManager::~TaskManager() { sweep_.cancel(); }

std::int64_t TaskManager::wall_now_nanos() const {
  return wall_offset_nanos_ + loop_.now().time_since_epoch().count();
}

grpc::Status TaskManager::lookup(const std::string& text, const std::string& field,
                                 TaskRecord** out) {
  TaskId id;
  if (auto status = parse_task_id(text, field, &id); !status.ok()) return status;
  *out = store_.find(id);
  if (*out != nullptr) return Status::OK;
  if (store_.evicted(id)) {
    return Status(
        StatusCode::NOT_FOUND,
        field + ": task '" + text + "' finished and was evicted after its retention period");
  }
  return Status(StatusCode::NOT_FOUND, field + ": no task '" + text + "'");
}

grpc::Status TaskManager::lookup_all(const google::protobuf::RepeatedPtrField<std::string>& ids,
                                     std::vector<TaskRecord*>* out) {
  if (auto status = check_id_count(ids.size(), "ids", limits_); !status.ok()) return status;
  out->clear();
  out->reserve(ids.size());
  for (int i = 0; i < ids.size(); ++i) {
    // The field's name is spelt out only for an id that is not found.
    std::optional<TaskId> id = TaskId::parse(ids[i]);
    TaskRecord* record = id ? store_.find(*id) : nullptr;
    if (record == nullptr) return lookup(ids[i], "ids[" + std::to_string(i) + "]", &record);
    out->push_back(record);
  }
  return Status::OK;
}

void TaskManager::fill(const std::vector<TaskId>& ids, v1::TaskView view,
                       google::protobuf::RepeatedPtrField<v1::Task>* out) {
  out->Reserve(static_cast<int>(ids.size()));
  for (const TaskId& id : ids) {
    v1::Task* task = out->Add();
    if (TaskRecord* record = store_.find(id)) {
      record->to_proto(task, view);
    } else {
      task->set_id(id.to_string());  // Evicted while the call waited.
    }
  }
}

TaskRecord& TaskManager::add_record(const v1::CreateTaskRequest& request, std::string args,
                                    std::int64_t now, const std::string* trace_id,
                                    const BatchKey* batch) {
  auto record = std::make_unique<TaskRecord>();
  record->id = ids_.next(now / 1'000'000);
  record->kind = request.kind();
  record->args = std::move(args);
  record->create_unix_nanos = now;
  if (request.has_timeout()) {
    record->timeout_nanos = request.timeout().seconds() * 1'000'000'000 + request.timeout().nanos();
  }
  if (!request.name().empty() || !request.labels().empty() || !request.idempotency_key().empty() ||
      request.has_dispatch()) {
    record->extras = std::make_unique<TaskExtras>();
    record->extras->name = request.name();
    record->extras->labels.insert(request.labels().begin(), request.labels().end());
    record->extras->idempotency_key = request.idempotency_key();
    if (request.has_dispatch()) request.dispatch().SerializeToString(&record->extras->dispatch);
  }
  if (trace_id != nullptr) {  // Rare: only traced requests pay for extras.
    if (!record->extras) record->extras = std::make_unique<TaskExtras>();
    record->extras->trace_id = *trace_id;
  }
  if (batch != nullptr) {  // One task per keyed CreateTasks call.
    if (!record->extras) record->extras = std::make_unique<TaskExtras>();
    record->extras->batch_key = batch->key;
    record->extras->batch_size = batch->size;
  }
  TaskRecord& added = store_.insert(std::move(record));
  if (added.timeout_nanos != 0) {
    added.deadline =
        loop_.call_later(Duration(added.timeout_nanos), [this, id = added.id] { on_deadline(id); });
  }
  ++unfinished_;
  notify(added, v1::TASK_STATE_UNSPECIFIED);
  return added;
}

void TaskManager::start(TaskRecord& record, Value args) {
  record.runner = loop_.create_task(run(record, std::move(args)));
}

Task<void> TaskManager::run(TaskRecord& record, Value args) {
  std::exception_ptr error;
  Value result;
  if (record.cancel_requested) {
    error = std::make_exception_ptr(CancelledError());
  } else {
    Kind* kind = kinds_.find(record.kind);
    if (kind != nullptr && kind->dispatched()) {
      record.handed_over = true;
    } else {
      mark_running(record);
      // Not waited for: after a crash a built-in task runs again from its
      // first start (or creation, the same moment) whether or not this
      // reached the disk.
      store_.commit_soon(record);
    }
    // Named, not a braced temporary: GCC 12 destroys a temporary class
    // argument of a coroutine call inside co_await twice.
    TaskContext context{record.id, record.attempt, nullptr};
    if (record.handed_over) {
      report_attempts(record, context);
    } else {
      tell_ran_before(record, context);
    }
    try {
      if (kind == nullptr) throw TaskFailure("UnknownKind", "no kind '" + record.kind + "'");
      result = co_await kind->run(std::move(args), context);
    } catch (...) {
      error = std::current_exception();
    }
  }
  if (left_unfinished(record, error)) co_return;
  finish(record, std::move(error), std::move(result));
  const v1::TaskState state = record.state;
  // The outcome is told (settled()) only once it is durable: a client
  // that saw a result must not see the task run again after a crash. Until
  // the runner is released the task is not retained, so not evicted.
  try {
    co_await store_.commit_one(record);
  } catch (const CancelledError&) {
    throw;  // The loop is shutting down.
  } catch (const std::exception& e) {
    spdlog::error("task {}: its outcome was not stored: {}", record.id.to_string(), e.what());
  }
  record.runner = {};
  retain(record);
  if (state == v1::TASK_STATE_CANCELLED) throw CancelledError();
  if (state == v1::TASK_STATE_FAILED) throw TaskFailedMarker();
}

// A dispatched kind's attempts move the task between PENDING (queued or
// waiting to retry) and RUNNING (a worker has it).
void TaskManager::report_attempts(TaskRecord& record, TaskContext& context) {
  context.extras = std::make_unique<TaskContext::Extras>();
  if (record.extras && !record.extras->dispatch.empty())
    context.extras->options.ParseFromString(record.extras->dispatch);
  // A task taken over after a restart: its attempts go on from where they
  // were, and one a worker was running is over (the worker answers the
  // old server, if anyone).
  context.extras->attempts_before = record.attempt;
  if (record.state == v1::TASK_STATE_RUNNING) {
    context.extras->last_attempt_cut_off = true;
    record.state = v1::TASK_STATE_PENDING;
    notify(record, v1::TASK_STATE_RUNNING);
    store_.commit_soon(record);
  }
  context.extras->report = [this, &record](v1::TaskState state, std::uint32_t attempt) {
    if (record.finished()) return;
    v1::TaskState previous = record.state;
    record.state = state;
    record.attempt = attempt;
    if (state == v1::TASK_STATE_RUNNING) record.start_unix_nanos = wall_now_nanos();
    notify(record, previous);
    store_.commit_soon(record);
  };
  // Progress is kept, not committed or broadcast: it changes too often to
  // be worth a write or an event each time.
  context.extras->progress = [&record](const Value& details) {
    if (record.finished()) return;
    if (!record.extras) record.extras = std::make_unique<TaskExtras>();
    details.SerializeToString(&record.extras->progress);
  };
}

// Not in run(): each local there is a byte more for every pending task.
void TaskManager::mark_running(TaskRecord& record) {
  const v1::TaskState previous = record.state;
  record.state = v1::TASK_STATE_RUNNING;
  // After a restart a task that was running runs again, as its next
  // attempt; its start time stays that of its first attempt.
  ++record.attempt;
  if (record.start_unix_nanos == 0) record.start_unix_nanos = wall_now_nanos();
  notify(record, previous);
}

void TaskManager::tell_ran_before(const TaskRecord& record, TaskContext& context) const {
  if (!record.recovered) return;
  context.extras = std::make_unique<TaskContext::Extras>();
  context.extras->ran_before =
      Duration(std::max<std::int64_t>(0, wall_now_nanos() - record.start_unix_nanos));
}

TaskManager::Recovered TaskManager::recover() {
  Recovered recovered;
  std::vector<std::pair<std::int64_t, TaskId>> finished;  // (finish time, id)
  std::vector<TaskId> unfinished;
  store_.scan(std::nullopt, [&](const TaskRecord& record) {
    if (record.finished()) {
      finished.emplace_back(record.finish_unix_nanos, record.id);
    } else {
      unfinished.push_back(record.id);
    }
    ids_.continue_after(record.id);
    return true;
  });

  // Retention runs from each task's finish, not from the restart.
  std::sort(finished.begin(), finished.end());
  const std::int64_t wall_now = wall_now_nanos();
  const TimePoint now = loop_.now();
  for (const auto& [finish_unix_nanos, id] : finished) {
    finished_.emplace_back(now - Duration(std::max<std::int64_t>(0, wall_now - finish_unix_nanos)),
                           id);
  }
  recovered.finished = finished.size();
  schedule_sweep();

  for (const TaskId& id : unfinished) {
    TaskRecord& record = *store_.find(id);
    record.recovered = true;
    // A built-in task starts as it is created; its start may not have
    // reached the disk.
    Kind* kind = kinds_.find(record.kind);
    if (record.start_unix_nanos == 0 && kind != nullptr && !kind->dispatched())
      record.start_unix_nanos = record.create_unix_nanos;
    ++unfinished_;
    notify(record, v1::TASK_STATE_UNSPECIFIED);  // New to this process's observers.
    if (record.state == v1::TASK_STATE_RUNNING) {
      ++recovered.running;
    } else {
      ++recovered.pending;
    }
    // A timeout counts from the task's creation, across restarts.
    if (record.timeout_nanos != 0) {
      Duration left(
          std::max<std::int64_t>(0, record.create_unix_nanos + record.timeout_nanos - wall_now));
      record.deadline = loop_.call_later(left, [this, id] { on_deadline(id); });
    }
    Value args;
    if (!record.args.empty()) args.ParseFromString(record.args);
    start(record, std::move(args));
  }
  return recovered;
}

bool TaskManager::left_unfinished(const TaskRecord& record, const std::exception_ptr& error) const {
  return leaving_ && !record.cancel_requested && holds<CancelledError>(error);
}

void TaskManager::finish(TaskRecord& record, std::exception_ptr error, Value result) {
  v1::TaskState previous = record.state;
  if (!error) {
    record.state = v1::TASK_STATE_SUCCEEDED;
    result.SerializeToString(&record.result);
  } else {
    try {
      std::rethrow_exception(error);
    } catch (const CancelledError&) {
      if (record.timed_out) {
        record.state = v1::TASK_STATE_FAILED;
        record.error = std::make_unique<v1::TaskError>(make_error(
            "TimeoutError", "task exceeded its timeout of " + seconds_text(record.timeout_nanos)));
      } else {
        record.state = v1::TASK_STATE_CANCELLED;
        record.error =
            std::make_unique<v1::TaskError>(make_error("CancelledError", "task was cancelled"));
      }
    } catch (const TaskFailure& failure) {
      record.state = v1::TASK_STATE_FAILED;
      record.error = std::make_unique<v1::TaskError>(make_error(failure.type(), failure.what()));
      if (failure.details().kind_case() != Value::KIND_NOT_SET)
        *record.error->mutable_details() = failure.details();
    } catch (const std::exception& e) {
      record.state = v1::TASK_STATE_FAILED;
      record.error = std::make_unique<v1::TaskError>(make_error("InternalError", e.what()));
    } catch (...) {
      record.state = v1::TASK_STATE_FAILED;
      record.error =
          std::make_unique<v1::TaskError>(make_error("InternalError", "unknown exception"));
    }
  }
  record.finish_unix_nanos = wall_now_nanos();
  record.deadline.cancel();
  record.deadline = {};
  --unfinished_;
  notify(record, previous);
}

void TaskManager::retain(const TaskRecord& record) {
  finished_.emplace_back(loop_.now(), record.id);
  schedule_sweep();
}

void TaskManager::request_cancel(TaskRecord& record) {
  if (record.finished() || record.cancel_requested) return;
  record.cancel_requested = true;
  // A pending task sees the request when its runner starts, and never runs.
  if (record.state == v1::TASK_STATE_RUNNING || record.handed_over) record.runner.cancel();
}

void TaskManager::on_deadline(const TaskId& id) {
  TaskRecord* record = store_.find(id);
  if (record == nullptr || record->finished()) return;
  record->timed_out = true;
  request_cancel(*record);
}

void TaskManager::schedule_sweep() {
  if (finished_.size() > limits_.max_retained_tasks) {
    // Over the count: evict at once, but not from inside a runner.
    if (!sweep_armed_ || loop_.now() < finished_.front().first + limits_.retention) {
      sweep_.cancel();
      sweep_ = loop_.call_soon([this] { sweep(); });
      sweep_armed_ = true;
    }
    return;
  }
  if (sweep_armed_ || finished_.empty()) return;
  sweep_ = loop_.call_at(finished_.front().first + limits_.retention, [this] { sweep(); });
  sweep_armed_ = true;
}

void TaskManager::sweep() {
  sweep_armed_ = false;
  const TimePoint now = loop_.now();
  while (!finished_.empty() && (finished_.size() > limits_.max_retained_tasks ||
                                finished_.front().first + limits_.retention <= now)) {
    store_.evict(finished_.front().second);
    finished_.pop_front();
  }
  schedule_sweep();
}

void TaskManager::notify(const TaskRecord& record, v1::TaskState previous) {
  for (TaskObserver* observer : observers_) observer->on_transition(record, previous);
  if (watchers_.empty()) return;
  std::optional<v1::TaskEvent> event;
  for (Watcher* watcher : watchers_) {
    if (watcher->closed || watcher->overflowed || !watcher->matches(record)) continue;
    if (watcher->events.size() >= limits_.watch_backlog) {
      watcher->overflowed = true;
      watcher->events.put_nowait(std::nullopt);
      continue;
    }
    if (!event) {
      event.emplace();
      record.to_proto(event->mutable_task());
      event->set_previous_state(previous);
    }
    watcher->events.put_nowait(*event);
  }
}

Task<grpc::Status> TaskManager::create_task(v1::CreateTaskRequest request, v1::Task* response,
                                            const std::string* trace_id) {
  TaskId id;
  if (auto status = co_await create_one(request, "", &id, trace_id); !status.ok()) co_return status;
  store_.find(id)->to_proto(response);
  co_return Status::OK;
}

Task<grpc::Status> TaskManager::create_one(v1::CreateTaskRequest& request, std::string_view prefix,
                                           TaskId* id, const std::string* trace_id) {
  if (!accepting_)
    co_return Status(StatusCode::UNAVAILABLE, "server is shutting down: not accepting new tasks");
  std::string args;
  if (auto status = validate_create(request, kinds_, limits_, prefix, &args); !status.ok())
    co_return status;
  if (!request.idempotency_key().empty()) {
    if (TaskRecord* existing = store_.find_by_idempotency_key(request.idempotency_key())) {
      *id = existing->id;
      co_return Status::OK;
    }
  }
  if (unfinished_ >= limits_.max_pending_tasks) {
    co_return Status(StatusCode::RESOURCE_EXHAUSTED,
                     "the server already holds " + std::to_string(unfinished_) +
                         " unfinished tasks, its limit (--max-pending-tasks)");
  }
  TaskRecord& record = add_record(request, std::move(args), wall_now_nanos(), trace_id);
  *id = record.id;
  co_await store_.commit_one(record);
  start(*store_.find(*id), std::move(*request.mutable_args()));
  co_return Status::OK;
}

Task<grpc::Status> TaskManager::create_tasks(v1::CreateTasksRequest& request,
                                             v1::CreateTasksResponse* response,
                                             const std::string* trace_id) {
  if (!accepting_)
    co_return Status(StatusCode::UNAVAILABLE, "server is shutting down: not accepting new tasks");
  if (auto status = check_id_count(request.tasks_size(), "tasks", limits_); !status.ok())
    co_return status;
  v1::TaskView view;
  if (auto status = parse_view(request.view(), "view", &view); !status.ok()) co_return status;
  if (auto status = validate_batch_key(request); !status.ok()) co_return status;
  const std::string& batch_key = request.idempotency_key();
  if (TaskRecord* first = batch_key.empty() ? nullptr : store_.find_by_batch_key(batch_key)) {
    std::vector<TaskId> ids;
    if (auto status = keyed_batch(*first, request.tasks_size(), &ids); !status.ok())
      co_return status;
    fill(ids, view, response->mutable_tasks());
    co_return Status::OK;
  }
  // Everything is checked before anything is created: all or nothing.
  std::unordered_set<std::string> new_keys;
  std::size_t to_create = 0;
  std::vector<std::string> serialized_args(request.tasks_size());
  for (int i = 0; i < request.tasks_size(); ++i) {
    const auto& one = request.tasks(i);
    std::string prefix = "tasks[" + std::to_string(i) + "].";
    if (auto status = validate_create(one, kinds_, limits_, prefix, &serialized_args[i]);
        !status.ok())
      co_return status;
    const std::string& key = one.idempotency_key();
    if (key.empty() ||
        (store_.find_by_idempotency_key(key) == nullptr && new_keys.insert(key).second))
      ++to_create;
  }
  if (unfinished_ + to_create > limits_.max_pending_tasks) {
    co_return Status(StatusCode::RESOURCE_EXHAUSTED, "tasks: " + std::to_string(to_create) +
                                                         " more would pass the server's limit of " +
                                                         std::to_string(limits_.max_pending_tasks) +
                                                         " unfinished tasks (--max-pending-tasks)");
  }
  const std::int64_t now = wall_now_nanos();
  std::vector<TaskId> ids;
  std::vector<const TaskRecord*> created;
  std::vector<TaskRecord*> to_start;
  ids.reserve(request.tasks_size());
  created.reserve(to_create);
  to_start.reserve(to_create);
  std::vector<Value> args;
  args.reserve(to_create);
  const BatchKey batch{batch_key, static_cast<std::uint32_t>(request.tasks_size())};
  for (int i = 0; i < request.tasks_size(); ++i) {
    v1::CreateTaskRequest& one = *request.mutable_tasks(i);
    TaskRecord* existing = one.idempotency_key().empty()
                               ? nullptr
                               : store_.find_by_idempotency_key(one.idempotency_key());
    if (existing != nullptr) {
      ids.push_back(existing->id);
      continue;
    }
    TaskRecord& record = add_record(one, std::move(serialized_args[i]), now, trace_id,
                                    i == 0 && !batch_key.empty() ? &batch : nullptr);
    ids.push_back(record.id);
    created.push_back(&record);
    to_start.push_back(&record);
    args.push_back(std::move(*one.mutable_args()));
  }
  co_await store_.commit(created);
  // Unfinished tasks are never evicted: the records are still there.
  for (std::size_t i = 0; i < to_start.size(); ++i) start(*to_start[i], std::move(args[i]));
  if (created.size() == ids.size()) {
    // All new (the usual case): the records are at hand, no need to look
    // each up again.
    auto* tasks = response->mutable_tasks();
    tasks->Reserve(static_cast<int>(created.size()));
    for (const TaskRecord* record : created) record->to_proto(tasks->Add(), view);
  } else {
    fill(ids, view, response->mutable_tasks());
  }
  co_return Status::OK;
}

// The tasks of one CreateTasks call share its one reading of the clock, and
// their ids follow one another: the first task (which holds the call's key)
// and the records after it with its create time are the call's tasks.
grpc::Status TaskManager::keyed_batch(const TaskRecord& first, int tasks_in_request,
                                      std::vector<TaskId>* ids) {
  const std::uint32_t size = first.extras->batch_size;
  if (static_cast<std::uint32_t>(tasks_in_request) != size) {
    return Status(StatusCode::INVALID_ARGUMENT,
                  "idempotency_key: already used by a CreateTasks call of " + std::to_string(size) +
                      " tasks; this call has " + std::to_string(tasks_in_request));
  }
  ids->reserve(size);
  ids->push_back(first.id);
  store_.scan(first.id, [&](const TaskRecord& record) {
    if (ids->size() == size || record.create_unix_nanos != first.create_unix_nanos) return false;
    ids->push_back(record.id);
    return true;
  });
  if (ids->size() != size) {
    return Status(StatusCode::FAILED_PRECONDITION,
                  "idempotency_key: " + std::to_string(size - ids->size()) + " of the " +
                      std::to_string(size) +
                      " tasks created with this key have been evicted; their ids are gone");
  }
  return Status::OK;
}

grpc::Status TaskManager::get_task(const v1::GetTaskRequest& request, v1::Task* response) {
  TaskRecord* record;
  if (auto status = lookup(request.id(), "id", &record); !status.ok()) return status;
  record->to_proto(response);
  return Status::OK;
}

grpc::Status TaskManager::list_tasks(const v1::ListTasksRequest& request,
                                     v1::ListTasksResponse* response) {
  std::uint32_t states;
  if (auto status = check_states(request.states(), &states); !status.ok()) return status;
  if (request.page_size() < 0) return invalid("page_size", "must not be negative");
  int page_size =
      request.page_size() == 0 ? kDefaultPageSize : std::min(request.page_size(), kMaxPageSize);
  std::optional<TaskId> after;
  if (!request.page_token().empty()) {
    after = TaskId::parse(request.page_token());
    if (!after) return invalid("page_token", "not a token from a previous ListTasks response");
  }
  std::vector<const TaskRecord*> page;
  store_.scan(after, [&](const TaskRecord& record) {
    if (states != 0 && (states & (1u << record.state)) == 0) return true;
    if (!request.kind().empty() && record.kind != request.kind()) return true;
    if (!labels_match(record, request.labels())) return true;
    page.push_back(&record);
    return static_cast<int>(page.size()) <= page_size;
  });
  if (static_cast<int>(page.size()) > page_size) {
    page.pop_back();
    response->set_next_page_token(page.back()->id.to_string());
  }
  for (const TaskRecord* record : page) record->to_proto(response->add_tasks());
  return Status::OK;
}

Task<grpc::Status> TaskManager::await_task(const v1::AwaitTaskRequest& request,
                                           v1::AwaitTaskResponse* response) {
  TaskRecord* record;
  if (auto status = lookup(request.id(), "id", &record); !status.ok()) co_return status;
  std::optional<Duration> limit;
  if (auto status = parse_duration(request.has_wait_timeout() ? &request.wait_timeout() : nullptr,
                                   "wait_timeout", DurationRule::kNotNegative, &limit);
      !status.ok()) {
    co_return status;
  }
  v1::TaskView view;
  if (auto status = parse_view(request.view(), "view", &view); !status.ok()) co_return status;
  co_return co_await await_one(record->id, limit, view, response);
}

Task<grpc::Status> TaskManager::await_one(TaskId id, std::optional<Duration> limit,
                                          v1::TaskView view, v1::AwaitTaskResponse* response) {
  TaskRecord* record = store_.find(id);
  // A finished task whose outcome is being stored is waited for whatever
  // the limit: it is a matter of milliseconds.
  if (record != nullptr && !record->settled() &&
      (limit != Duration::zero() || record->finished())) {
    if (record->finished()) limit.reset();
    co_await taskwire::wait(just(record->runner), WaitOptions{ReturnWhen::kAllCompleted, limit, 0});
    record = store_.find(id);
  }
  if (record == nullptr)
    co_return Status(StatusCode::NOT_FOUND, "id: task was evicted while awaited");
  record->to_proto(response->mutable_task(), view);
  response->set_done(record->settled());
  co_return Status::OK;
}

Task<grpc::Status> TaskManager::run_task(v1::RunTaskRequest request,
                                         v1::AwaitTaskResponse* response,
                                         const std::string* trace_id) {
  // Everything is checked before the task is created.
  std::optional<Duration> limit;
  if (auto status = parse_duration(request.has_wait_timeout() ? &request.wait_timeout() : nullptr,
                                   "wait_timeout", DurationRule::kNotNegative, &limit);
      !status.ok()) {
    co_return status;
  }
  v1::TaskView view;
  if (auto status = parse_view(request.view(), "view", &view); !status.ok()) co_return status;
  TaskId id;
  if (auto status = co_await create_one(*request.mutable_task(), "task.", &id, trace_id);
      !status.ok())
    co_return status;
  co_return co_await await_one(id, limit, view, response);
}

Task<grpc::Status> TaskManager::gather(const v1::GatherRequest& request,
                                       v1::GatherResponse* response) {
  std::vector<TaskRecord*> records;
  if (auto status = lookup_all(request.ids(), &records); !status.ok()) co_return status;
  std::optional<Duration> limit;
  if (auto status = parse_duration(request.has_wait_timeout() ? &request.wait_timeout() : nullptr,
                                   "wait_timeout", DurationRule::kNotNegative, &limit);
      !status.ok()) {
    co_return status;
  }
  v1::TaskView view;
  if (auto status = parse_view(request.view(), "view", &view); !status.ok()) co_return status;
  const std::vector<TaskId> ids = ids_of(records);
  const bool stop_on_failure = !request.return_exceptions();
  std::optional<TaskId> first_failure;
  // Tasks already finished count first, in request order, as in asyncio.
  for (TaskRecord* record : records) {
    if (stop_on_failure && record->settled() && record->state != v1::TASK_STATE_SUCCEEDED) {
      first_failure = record->id;
      break;
    }
  }
  bool timed_out = false;
  std::vector<TaskRecord*> running;
  for (TaskRecord* record : unique(records)) {
    if (!record->settled()) running.push_back(record);
  }
  if (!first_failure && !running.empty()) {
    const RunnerIds id_of_runner(running);
    auto completions = taskwire::as_completed(runners_of(running), limit);
    while (!completions.empty()) {
      TaskHandle<void> done;
      try {
        done = co_await completions.next();
      } catch (const TimeoutError&) {
        timed_out = true;
        break;
      }
      if (stop_on_failure && (done.cancelled() || done.exception() != nullptr)) {
        first_failure = id_of_runner.at(done.state());
        break;
      }
    }
  }
  fill(ids, view, response->mutable_tasks());
  if (first_failure) response->set_first_failure_id(first_failure->to_string());
  response->set_done(first_failure.has_value() || !timed_out);
  co_return Status::OK;
}

Task<grpc::Status> TaskManager::wait(const v1::WaitRequest& request, v1::WaitResponse* response) {
  if (request.ids().empty()) co_return invalid("ids", "must not be empty");
  std::vector<TaskRecord*> records;
  if (auto status = lookup_all(request.ids(), &records); !status.ok()) co_return status;
  records = unique(records);
  int when = request.return_when();
  if (when < v1::RETURN_WHEN_UNSPECIFIED || when > v1::RETURN_WHEN_ALL_COMPLETED) {
    co_return invalid("return_when", "unknown value " + std::to_string(when));
  }
  if (request.count() > records.size()) {
    co_return invalid("count", "must be at most the number of distinct ids (" +
                                   std::to_string(records.size()) + ")");
  }
  std::optional<Duration> timeout;
  if (auto status = parse_duration(request.has_timeout() ? &request.timeout() : nullptr, "timeout",
                                   DurationRule::kNotNegative, &timeout);
      !status.ok()) {
    co_return status;
  }
  v1::TaskView view;
  if (auto status = parse_view(request.view(), "view", &view); !status.ok()) co_return status;
  ReturnWhen return_when = when == v1::RETURN_WHEN_FIRST_COMPLETED   ? ReturnWhen::kFirstCompleted
                           : when == v1::RETURN_WHEN_FIRST_EXCEPTION ? ReturnWhen::kFirstException
                                                                     : ReturnWhen::kAllCompleted;
  std::size_t finished = 0;
  bool any_failed = false;
  for (TaskRecord* record : records) {
    if (!record->settled()) continue;
    ++finished;
    any_failed = any_failed || record->state == v1::TASK_STATE_FAILED;
  }
  bool satisfied = (return_when == ReturnWhen::kFirstCompleted && finished > 0) ||
                   (return_when == ReturnWhen::kFirstException && any_failed) ||
                   finished == records.size() ||
                   (request.count() != 0 && finished >= request.count());
  const std::vector<TaskId> ids = ids_of(records);
  if (!satisfied) {
    std::size_t count = request.count() == 0 ? 0 : request.count() - finished;
    co_await taskwire::wait(runners_of(records), WaitOptions{return_when, timeout, count});
  }
  for (const TaskId& id : ids) {
    TaskRecord* record = store_.find(id);
    if (record != nullptr && !record->settled()) {
      response->add_pending_ids(id.to_string());
    } else if (record != nullptr) {
      record->to_proto(response->add_done(), view);
    }
  }
  co_return Status::OK;
}

grpc::Status TaskManager::check_as_completed(const v1::AsCompletedRequest& request,
                                             Completions* out) {
  std::vector<TaskRecord*> records;
  if (auto status = lookup_all(request.ids(), &records); !status.ok()) return status;
  if (auto status = parse_duration(request.has_timeout() ? &request.timeout() : nullptr, "timeout",
                                   DurationRule::kNotNegative, &out->timeout);
      !status.ok()) {
    return status;
  }
  if (auto status = parse_view(request.view(), "view", &out->view); !status.ok()) return status;
  for (TaskRecord* record : unique(records)) {
    (record->settled() ? out->settled : out->running).push_back(record);
  }
  return Status::OK;
}

namespace {

grpc::Status completions_timed_out(std::size_t remaining) {
  return grpc::Status(
      StatusCode::DEADLINE_EXCEEDED,
      "timeout: " + std::to_string(remaining) + " task(s) still unfinished; they keep running");
}

}  // namespace

Task<grpc::Status> TaskManager::as_completed(const v1::AsCompletedRequest& request,
                                             Emit<v1::Task> emit) {
  Completions checked;
  if (auto status = check_as_completed(request, &checked); !status.ok()) co_return status;
  std::vector<v1::Task> already(checked.settled.size());
  for (std::size_t i = 0; i < checked.settled.size(); ++i)
    checked.settled[i]->to_proto(&already[i], checked.view);
  const RunnerIds id_of_runner(checked.running);
  auto completions = taskwire::as_completed(runners_of(checked.running), checked.timeout);
  for (v1::Task& task : already) {
    if (!co_await emit(task)) co_return Status(StatusCode::CANCELLED, "stream closed");
  }
  v1::Task task;
  while (!completions.empty()) {
    TaskHandle<void> done;
    bool timed_out = false;
    try {
      done = co_await completions.next();
    } catch (const TimeoutError&) {
      timed_out = true;
    }
    if (timed_out) co_return completions_timed_out(completions.remaining());
    TaskRecord* record = store_.find(id_of_runner.at(done.state()));
    if (record == nullptr) continue;
    record->to_proto(&task, checked.view);
    if (!co_await emit(task)) co_return Status(StatusCode::CANCELLED, "stream closed");
  }
  co_return Status::OK;
}

namespace {

// The most tasks one AsCompletedBatches message carries, and about the most
// bytes (a message is sent once it reaches either; a task larger than the
// byte limit goes alone): well under gRPC's default 4 MiB receive limit.
constexpr int kMaxTasksPerBatch = 1000;
constexpr std::size_t kMaxBatchBytes = 1 << 20;

// Builds AsCompletedBatches messages: add() says when one is full.
class BatchBuilder {
  // An id, state, attempt and times, with their tags.
  static constexpr std::size_t kFixedBytes = 64;

 public:
  explicit BatchBuilder(v1::TaskView view) : view_(view) {}

  // Adds the record's task; true if the message is now full.
  bool add(const TaskRecord& record) {
    record.to_proto(batch_.add_tasks(), view_);
    // About the task's size, without a pass over it (serializing makes
    // one): the result or error, the args in the FULL view, and a little
    // more for the rest.
    bytes_ += kFixedBytes + record.result.size() +
              (record.error ? record.error->ByteSizeLong() : 0) +
              (view_ == v1::TASK_VIEW_OUTCOME ? 0 : record.args.size());
    return batch_.tasks_size() >= kMaxTasksPerBatch || bytes_ >= kMaxBatchBytes;
  }
  bool empty() const { return batch_.tasks_size() == 0; }
  // The message built so far, to send (Emit takes its contents); the next
  // add() starts another.
  v1::TaskBatch& take() {
    sending_.Clear();
    sending_.Swap(&batch_);
    bytes_ = 0;
    return sending_;
  }

 private:
  v1::TaskView view_;
  v1::TaskBatch batch_;
  v1::TaskBatch sending_;
  std::size_t bytes_ = 0;
};

}  // namespace

Task<grpc::Status> TaskManager::as_completed_batches(const v1::AsCompletedRequest& request,
                                                     Emit<v1::TaskBatch> emit) {
  Completions checked;
  if (auto status = check_as_completed(request, &checked); !status.ok()) co_return status;
  const RunnerIds id_of_runner(checked.running);
  // The timeout counts from here, as AsCompleted's does.
  auto completions = taskwire::as_completed(runners_of(checked.running), checked.timeout);
  BatchBuilder batch(checked.view);
  for (TaskRecord* record : checked.settled) {
    if (batch.add(*record) && !co_await emit(batch.take()))
      co_return Status(StatusCode::CANCELLED, "stream closed");
  }
  if (!batch.empty() && !co_await emit(batch.take()))
    co_return Status(StatusCode::CANCELLED, "stream closed");
  while (!completions.empty()) {
    TaskHandle<void> done;
    bool timed_out = false;
    try {
      done = co_await completions.next();
    } catch (const TimeoutError&) {
      timed_out = true;
    }
    if (timed_out) co_return completions_timed_out(completions.remaining());
    // Every other task that has finished by now (those whose timers fired
    // in the same pass of the loop) joins this one's message.
    for (;;) {
      TaskRecord* record = store_.find(id_of_runner.at(done.state()));
      if (record != nullptr && batch.add(*record) && !co_await emit(batch.take()))
        co_return Status(StatusCode::CANCELLED, "stream closed");
      if (completions.empty()) break;
      auto next = completions.next();
      if (!next.await_ready()) break;
      done = co_await next;
    }
    if (!batch.empty() && !co_await emit(batch.take()))
      co_return Status(StatusCode::CANCELLED, "stream closed");
  }
  co_return Status::OK;
}

Task<grpc::Status> TaskManager::cancel_task(const v1::CancelTaskRequest& request,
                                            v1::Task* response, const std::string* trace_id) {
  TaskRecord* record;
  if (auto status = lookup(request.id(), "id", &record); !status.ok()) co_return status;
  TaskId id = record->id;
  if (!record->settled()) {
    for (TaskObserver* observer : observers_) observer->on_cancel_requested(*record, trace_id);
    request_cancel(*record);
    co_await taskwire::wait(just(record->runner));
  }
  record = store_.find(id);
  if (record == nullptr) co_return Status(StatusCode::NOT_FOUND, "id: task was evicted");
  record->to_proto(response);
  co_return Status::OK;
}

Task<grpc::Status> TaskManager::watch_tasks(const v1::WatchTasksRequest& request,
                                            Emit<v1::TaskEvent> emit) {
  if (!accepting_) co_return Status(StatusCode::UNAVAILABLE, "server is shutting down");
  Watcher watcher;
  if (auto status = check_id_count(request.ids_size(), "ids", limits_); !status.ok())
    co_return status;
  for (int i = 0; i < request.ids_size(); ++i) {
    TaskId id;
    if (auto status = parse_task_id(request.ids(i), "ids[" + std::to_string(i) + "]", &id);
        !status.ok()) {
      co_return status;
    }
    watcher.ids.insert(id);
  }
  if (auto status = check_states(request.states(), &watcher.states); !status.ok()) co_return status;
  watcher.kind = request.kind();
  watcher.labels = request.labels();
  watchers_.push_back(&watcher);
  struct Unregister {
    std::list<Watcher*>& watchers;
    Watcher* watcher;
    ~Unregister() { watchers.remove(watcher); }
  } unregister{watchers_, &watcher};
  for (;;) {
    std::optional<v1::TaskEvent> event = co_await watcher.events.get();
    if (watcher.closed) co_return Status::OK;
    if (watcher.overflowed) {
      co_return Status(StatusCode::RESOURCE_EXHAUSTED, "watch: the stream fell more than " +
                                                           std::to_string(limits_.watch_backlog) +
                                                           " events behind; watch again to resume");
    }
    if (event && !co_await emit(*event)) co_return Status(StatusCode::CANCELLED, "stream closed");
  }
}

void TaskManager::stop_accepting() {
  accepting_ = false;
  for (Watcher* watcher : watchers_) {
    watcher->closed = true;
    watcher->events.put_nowait(std::nullopt);
  }
}

}  // namespace taskwire::server
