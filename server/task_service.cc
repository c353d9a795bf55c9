#include "server/task_service.h"

namespace taskwire::server {
namespace {

// Calls of one method that gRPC may hand over before the loop has asked for
// more: enough that a burst of concurrent calls does not wait on the loop.
constexpr int kCallsRequestedAhead = 32;

}  // namespace

void TaskService::listen(grpc::ServerCompletionQueue& queue) {
  auto rpc_metrics = [this](const char* name) {
    return metrics_ == nullptr ? nullptr : &metrics_->rpc(name);
  };
  auto unary = [&]<typename Request, typename Response>(
                   Unary<Request, Response>& method, const char* name,
                   typename Unary<Request, Response>::RequestFn request,
                   typename Unary<Request, Response>::Handler handler) {
    method = {&service_, request, std::move(handler), &queue, &loop_, &calls_,
              &live_,    name,    rpc_metrics(name)};
    for (int i = 0; i < kCallsRequestedAhead; ++i)
      UnaryCall<Async, Request, Response>::listen(method);
  };
  auto stream = [&]<typename Request, typename Message>(
                    Stream<Request, Message>& method, const char* name,
                    typename Stream<Request, Message>::RequestFn request,
                    typename Stream<Request, Message>::Handler handler) {
    method = {&service_, request, std::move(handler), &queue, &loop_, &calls_,
              &live_,    name,    rpc_metrics(name)};
    for (int i = 0; i < kCallsRequestedAhead; ++i)
      StreamCall<Async, Request, Message>::listen(method);
  };
  TaskManager& m = manager_;
  unary(create_task_, "taskwire.v1.TaskService/CreateTask", &Async::RequestCreateTask,
        [&m](v1::CreateTaskRequest& r, v1::Task* out, const CallInfo& call) {
          return m.create_task(std::move(r), out, call.trace_id);
        });
  unary(create_tasks_, "taskwire.v1.TaskService/CreateTasks", &Async::RequestCreateTasks,
        [&m](v1::CreateTasksRequest& r, v1::CreateTasksResponse* out, const CallInfo& call) {
          return m.create_tasks(r, out, call.trace_id);
        });
  unary(get_task_, "taskwire.v1.TaskService/GetTask", &Async::RequestGetTask,
        [&m](const v1::GetTaskRequest& r, v1::Task* out, const CallInfo&) -> Task<grpc::Status> {
          co_return m.get_task(r, out);
        });
  unary(list_tasks_, "taskwire.v1.TaskService/ListTasks", &Async::RequestListTasks,
        [&m](const v1::ListTasksRequest& r, v1::ListTasksResponse* out,
             const CallInfo&) -> Task<grpc::Status> { co_return m.list_tasks(r, out); });
  unary(await_task_, "taskwire.v1.TaskService/AwaitTask", &Async::RequestAwaitTask,
        [&m](const v1::AwaitTaskRequest& r, v1::AwaitTaskResponse* out, const CallInfo&) {
          return m.await_task(r, out);
        });
  unary(run_task_, "taskwire.v1.TaskService/RunTask", &Async::RequestRunTask,
        [&m](v1::RunTaskRequest& r, v1::AwaitTaskResponse* out, const CallInfo& call) {
          return m.run_task(std::move(r), out, call.trace_id);
        });
  unary(gather_, "taskwire.v1.TaskService/Gather", &Async::RequestGather,
        [&m](const v1::GatherRequest& r, v1::GatherResponse* out, const CallInfo&) {
          return m.gather(r, out);
        });
  unary(wait_, "taskwire.v1.TaskService/Wait", &Async::RequestWait,
        [&m](const v1::WaitRequest& r, v1::WaitResponse* out, const CallInfo&) {
          return m.wait(r, out);
        });
  unary(cancel_task_, "taskwire.v1.TaskService/CancelTask", &Async::RequestCancelTask,
        [&m](const v1::CancelTaskRequest& r, v1::Task* out, const CallInfo& call) {
          return m.cancel_task(r, out, call.trace_id);
        });
  stream(as_completed_, "taskwire.v1.TaskService/AsCompleted", &Async::RequestAsCompleted,
         [&m](const v1::AsCompletedRequest& r, Stream<v1::AsCompletedRequest, v1::Task>::Emit emit,
              const CallInfo&) { return m.as_completed(r, std::move(emit)); });
  stream(as_completed_batches_, "taskwire.v1.TaskService/AsCompletedBatches",
         &Async::RequestAsCompletedBatches,
         [&m](const v1::AsCompletedRequest& r,
              Stream<v1::AsCompletedRequest, v1::TaskBatch>::Emit emit,
              const CallInfo&) { return m.as_completed_batches(r, std::move(emit)); });
  stream(
      watch_tasks_, "taskwire.v1.TaskService/WatchTasks", &Async::RequestWatchTasks,
      [&m](const v1::WatchTasksRequest& r, Stream<v1::WatchTasksRequest, v1::TaskEvent>::Emit emit,
           const CallInfo&) { return m.watch_tasks(r, std::move(emit)); });
}

}  // namespace taskwire::server
