#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "server/metrics/registry.h"
#include "server/task_observer.h"

namespace taskwire::server::metrics {

// The task metrics, kept up to date from the TaskManager's transitions on
// the loop thread: plain increments, no clock reads (durations come from
// the times the record already holds), and a kind's series are found by
// comparing the kind with the previous transition's (one string compare);
// only a different kind costs a hash lookup.
//
//   taskwire_tasks_created_total{kind}
//   taskwire_tasks_finished_total{kind,outcome}  succeeded, failed,
//       cancelled, timed_out (the task's own timeout)
//   taskwire_tasks_pending, taskwire_tasks_running
//   taskwire_task_duration_seconds{kind}    start of the last attempt to finish
//   taskwire_task_queue_wait_seconds{kind}  creation to the first start
class TaskMetrics final : public TaskObserver {
 public:
  // Kinds beyond this many share the kind "other": clients choose kinds,
  // and a series per kind must not grow without bound.
  static constexpr std::size_t kMaxKinds = 256;

  explicit TaskMetrics(Registry& registry);

  void on_transition(const TaskRecord& record, v1::TaskState previous) override;

 private:
  enum Outcome { kSucceeded, kFailed, kCancelled, kTimedOut, kOutcomes };
  struct KindSeries {
    Counter* created;
    Counter* finished[kOutcomes];
    Histogram* duration;
    Histogram* queue_wait;
  };

  KindSeries& series(const std::string& kind);
  KindSeries& make_series(const std::string& kind);

  Family<Counter>& created_;
  Family<Counter>& finished_;
  Family<Histogram>& duration_;
  Family<Histogram>& queue_wait_;
  std::unordered_map<std::string, std::unique_ptr<KindSeries>> kinds_;
  std::unique_ptr<KindSeries> other_;  // Once kMaxKinds kinds have series.
  std::string last_kind_;
  KindSeries* last_ = nullptr;
  // Set into the gauges when rendered.
  std::int64_t pending_ = 0;
  std::int64_t running_ = 0;
};

}  // namespace taskwire::server::metrics
