#pragma once

#include <deque>
#include <string>

#include "server/dispatcher.h"
#include "server/metrics/registry.h"
#include "server/metrics/rpc_metrics.h"
#include "server/metrics/task_metrics.h"

namespace taskwire::server::metrics {

// Every metric taskwired exports, in one registry, on the loop thread:
// the task metrics (fed by the TaskManager as its observer), per-method
// RPC durations (fed by the calls), and what is read when scraped: the
// dispatcher's queues and workers, and the process.
//
//   taskwire_queue_depth{kind}      attempts waiting for a worker
//   taskwire_workers_connected      worker streams attached
//   taskwire_rpc_duration_seconds{method,code}
//   process_resident_memory_bytes, process_start_time_seconds
class ServerMetrics {
 public:
  // `dispatcher` must outlive this.
  explicit ServerMetrics(const Dispatcher& dispatcher);
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  TaskMetrics& tasks() noexcept { return tasks_; }
  // The series of one method ("taskwire.v1.TaskService/CreateTask"); ask
  // once per method and keep the reference.
  RpcMetrics& rpc(std::string method) {
    return rpcs_.emplace_back(rpc_duration_, std::move(method));
  }
  // The exposition text; on the loop thread.
  std::string render() const;

 private:
  Registry registry_;
  TaskMetrics tasks_;
  Family<Histogram>& rpc_duration_;
  std::deque<RpcMetrics> rpcs_;
};

}  // namespace taskwire::server::metrics
