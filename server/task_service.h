#pragma once

#include <grpcpp/grpcpp.h>

#include "core/event_loop.h"
#include "server/call_counter.h"
#include "server/metrics/server_metrics.h"
#include "server/stream_call.h"
#include "server/task_manager.h"
#include "server/unary_call.h"
#include "taskwire/v1/tasks.grpc.pb.h"

namespace taskwire::server {

// The gRPC face of the TaskManager, on gRPC's async API: calls arrive on a
// completion queue that the loop itself polls (CqPoller), the manager
// answers them on the loop, and no thread is handed anything or waits.
class TaskService {
 public:
  TaskService(EventLoop& loop, TaskManager& manager, CallCounter& calls, LiveCalls& live)
      : loop_(loop), manager_(manager), calls_(calls), live_(live) {}

  // To register with the grpc::ServerBuilder.
  grpc::Service* service() noexcept { return &service_; }

  // Before listen(): times every call into `metrics` (which must outlive
  // the calls). Without it no clock is read for metrics.
  void set_metrics(metrics::ServerMetrics* metrics) { metrics_ = metrics; }

  // Once the server is started: asks gRPC for the first calls of every
  // method, on `queue`. The service must outlive the queue's events.
  void listen(grpc::ServerCompletionQueue& queue);

 private:
  using Async = v1::TaskService::AsyncService;
  template <typename Request, typename Response>
  using Unary = UnaryMethod<Async, Request, Response>;
  template <typename Request, typename Message>
  using Stream = StreamMethod<Async, Request, Message>;

  EventLoop& loop_;
  TaskManager& manager_;
  CallCounter& calls_;
  LiveCalls& live_;
  metrics::ServerMetrics* metrics_ = nullptr;
  Async service_;
  Unary<v1::CreateTaskRequest, v1::Task> create_task_{};
  Unary<v1::CreateTasksRequest, v1::CreateTasksResponse> create_tasks_{};
  Unary<v1::GetTaskRequest, v1::Task> get_task_{};
  Unary<v1::ListTasksRequest, v1::ListTasksResponse> list_tasks_{};
  Unary<v1::AwaitTaskRequest, v1::AwaitTaskResponse> await_task_{};
  Unary<v1::RunTaskRequest, v1::AwaitTaskResponse> run_task_{};
  Unary<v1::GatherRequest, v1::GatherResponse> gather_{};
  Unary<v1::WaitRequest, v1::WaitResponse> wait_{};
  Unary<v1::CancelTaskRequest, v1::Task> cancel_task_{};
  Stream<v1::AsCompletedRequest, v1::Task> as_completed_{};
  Stream<v1::AsCompletedRequest, v1::TaskBatch> as_completed_batches_{};
  Stream<v1::WatchTasksRequest, v1::TaskEvent> watch_tasks_{};
};

}  // namespace taskwire::server
