#include "server/task_record.h"

namespace taskwire::server {
namespace {

void set_time(std::int64_t unix_nanos, google::protobuf::Timestamp* out) {
  out->set_seconds(unix_nanos / 1'000'000'000);
  out->set_nanos(static_cast<int>(unix_nanos % 1'000'000'000));
}

}  // namespace

const std::string& TaskRecord::idempotency_key() const {
  static const std::string kNone;
  return extras ? extras->idempotency_key : kNone;
}

void TaskRecord::to_proto(v1::Task* task, v1::TaskView view) const {
  task->Clear();
  task->set_id(id.to_string());
  task->set_state(state);
  if (state == v1::TASK_STATE_SUCCEEDED) task->mutable_result()->ParseFromString(result);
  if (error) *task->mutable_error() = *error;
  task->set_attempt(attempt);
  if (view == v1::TASK_VIEW_OUTCOME) return;
  task->set_kind(kind);
  if (!args.empty()) task->mutable_args()->ParseFromString(args);
  set_time(create_unix_nanos, task->mutable_create_time());
  if (start_unix_nanos != 0) set_time(start_unix_nanos, task->mutable_start_time());
  if (finish_unix_nanos != 0) set_time(finish_unix_nanos, task->mutable_finish_time());
  if (timeout_nanos != 0) {
    task->mutable_timeout()->set_seconds(timeout_nanos / 1'000'000'000);
    task->mutable_timeout()->set_nanos(static_cast<int>(timeout_nanos % 1'000'000'000));
  }
  if (extras) {
    task->set_name(extras->name);
    task->mutable_labels()->insert(extras->labels.begin(), extras->labels.end());
    task->set_idempotency_key(extras->idempotency_key);
    if (!extras->dispatch.empty()) task->mutable_dispatch()->ParseFromString(extras->dispatch);
    if (!extras->progress.empty()) task->mutable_progress()->ParseFromString(extras->progress);
  }
}

}  // namespace taskwire::server
