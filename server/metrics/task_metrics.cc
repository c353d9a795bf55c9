#include "server/metrics/task_metrics.h"

namespace taskwire::server::metrics {
namespace {

// From a millisecond to an hour: built-in tasks take microseconds to
// seconds, work handed to workers up to hours.
std::vector<double> task_buckets() {
  return {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};
}

double seconds_between(std::int64_t from_nanos, std::int64_t to_nanos) {
  return static_cast<double>(to_nanos - from_nanos) / 1e9;
}

}  // namespace

TaskMetrics::TaskMetrics(Registry& registry)
    : created_(
          registry.counter("taskwire_tasks_created_total", "Tasks created, by kind.", {"kind"})),
      finished_(registry.counter(
          "taskwire_tasks_finished_total",
          "Tasks finished, by kind and outcome (succeeded, failed, cancelled, timed_out).",
          {"kind", "outcome"})),
      duration_(registry.histogram(
          "taskwire_task_duration_seconds",
          "Seconds from the start of a task's last attempt to its end, for tasks that started.",
          {"kind"}, task_buckets())),
      queue_wait_(registry.histogram("taskwire_task_queue_wait_seconds",
                                     "Seconds from a task's creation to its first start.", {"kind"},
                                     task_buckets())) {
  Gauge& pending =
      registry.gauge("taskwire_tasks_pending", "Tasks waiting to start (or for a retry).").with({});
  Gauge& running = registry.gauge("taskwire_tasks_running", "Tasks running.").with({});
  registry.add_collector([this, &pending, &running] {
    pending.set(static_cast<double>(pending_));
    running.set(static_cast<double>(running_));
  });
}

TaskMetrics::KindSeries& TaskMetrics::series(const std::string& kind) {
  if (last_ != nullptr && kind == last_kind_) return *last_;
  auto it = kinds_.find(kind);
  KindSeries& found = it != kinds_.end() ? *it->second : make_series(kind);
  last_kind_ = kind;
  last_ = &found;
  return found;
}

TaskMetrics::KindSeries& TaskMetrics::make_series(const std::string& kind) {
  const bool other = kinds_.size() >= kMaxKinds;
  if (other && other_) return *other_;
  const std::string label = other ? "other" : kind;
  auto series = std::make_unique<KindSeries>();
  series->created = &created_.with({label});
  static constexpr const char* kOutcomeNames[kOutcomes] = {"succeeded", "failed", "cancelled",
                                                           "timed_out"};
  for (int i = 0; i < kOutcomes; ++i)
    series->finished[i] = &finished_.with({label, kOutcomeNames[i]});
  series->duration = &duration_.with({label});
  series->queue_wait = &queue_wait_.with({label});
  if (other) return *(other_ = std::move(series));
  return *kinds_.emplace(kind, std::move(series)).first->second;
}

void TaskMetrics::on_transition(const TaskRecord& record, v1::TaskState previous) {
  if (previous == v1::TASK_STATE_PENDING) --pending_;
  if (previous == v1::TASK_STATE_RUNNING) --running_;
  KindSeries& kind = series(record.kind);
  switch (record.state) {
    case v1::TASK_STATE_PENDING:
      ++pending_;
      if (previous == v1::TASK_STATE_UNSPECIFIED) kind.created->inc();
      break;
    case v1::TASK_STATE_RUNNING:
      ++running_;
      if (previous != v1::TASK_STATE_RUNNING && record.attempt == 1)
        kind.queue_wait->observe(
            seconds_between(record.create_unix_nanos, record.start_unix_nanos));
      break;
    case v1::TASK_STATE_SUCCEEDED:
    case v1::TASK_STATE_FAILED:
    case v1::TASK_STATE_CANCELLED: {
      Outcome outcome = record.state == v1::TASK_STATE_SUCCEEDED   ? kSucceeded
                        : record.state == v1::TASK_STATE_CANCELLED ? kCancelled
                        : record.timed_out                         ? kTimedOut
                                                                   : kFailed;
      kind.finished[outcome]->inc();
      if (record.start_unix_nanos != 0)
        kind.duration->observe(seconds_between(record.start_unix_nanos, record.finish_unix_nanos));
      break;
    }
    default:
      break;
  }
}

}  // namespace taskwire::server::metrics
