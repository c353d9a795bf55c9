#include "server/task_log.h"

#include "server/logging.h"

namespace taskwire::server {
namespace {

std::string_view trace_of(const TaskRecord& record) {
  return record.extras ? std::string_view(record.extras->trace_id) : std::string_view();
}

}  // namespace

void TaskLog::on_transition(const TaskRecord& record, v1::TaskState previous) {
  constexpr auto kLevel = spdlog::level::debug;
  if (!spdlog::should_log(kLevel)) return;
  const std::string id = record.id.to_string();
  const LogFields fields{id, trace_of(record)};
  switch (record.state) {
    case v1::TASK_STATE_PENDING:
      if (previous == v1::TASK_STATE_UNSPECIFIED) {
        log_with(kLevel, fields, "task {} created: kind {}", id, record.kind);
      } else {
        log_with(kLevel, fields, "task {} waits for attempt {}", id, record.attempt);
      }
      break;
    case v1::TASK_STATE_RUNNING:
      log_with(kLevel, fields, "task {} started: kind {}, attempt {}", id, record.kind,
               record.attempt);
      break;
    case v1::TASK_STATE_SUCCEEDED:
      log_with(kLevel, fields, "task {} succeeded", id);
      break;
    case v1::TASK_STATE_FAILED:
    case v1::TASK_STATE_CANCELLED:
      log_with(kLevel, fields, "task {} {}: {}: {}", id,
               record.state == v1::TASK_STATE_CANCELLED ? "cancelled"
               : record.timed_out                       ? "timed out"
                                                        : "failed",
               record.error ? record.error->type() : "",
               record.error ? record.error->message() : "");
      break;
    default:
      break;
  }
}

void TaskLog::on_cancel_requested(const TaskRecord& record, const std::string* trace_id) {
  constexpr auto kLevel = spdlog::level::debug;
  if (!spdlog::should_log(kLevel)) return;
  const std::string id = record.id.to_string();
  log_with(kLevel, LogFields{id, trace_id != nullptr ? *trace_id : std::string_view()},
           "task {} cancellation requested", id);
}

}  // namespace taskwire::server
