#include "server/task_service.h"

#include "server/stream_call.h"
#include "server/unary_call.h"

namespace taskwire::server {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;
using Status = grpc::Status;

ServerUnaryReactor* TaskService::CreateTask(CallbackServerContext*,
                                            const v1::CreateTaskRequest* request,
                                            v1::Task* response) {
  return UnaryCall::start(loop_, calls_, [this, request, response] {
    return manager_.create_task(*request, response);
  });
}

ServerUnaryReactor* TaskService::CreateTasks(CallbackServerContext*,
                                             const v1::CreateTasksRequest* request,
                                             v1::CreateTasksResponse* response) {
  return UnaryCall::start(loop_, calls_, [this, request, response] {
    return manager_.create_tasks(*request, response);
  });
}

ServerUnaryReactor* TaskService::GetTask(CallbackServerContext*, const v1::GetTaskRequest* request,
                                         v1::Task* response) {
  return UnaryCall::start(loop_, calls_, [this, request, response]() -> Task<Status> {
    co_return manager_.get_task(*request, response);
  });
}

ServerUnaryReactor* TaskService::ListTasks(CallbackServerContext*,
                                           const v1::ListTasksRequest* request,
                                           v1::ListTasksResponse* response) {
  return UnaryCall::start(loop_, calls_, [this, request, response]() -> Task<Status> {
    co_return manager_.list_tasks(*request, response);
  });
}

ServerUnaryReactor* TaskService::AwaitTask(CallbackServerContext*,
                                           const v1::AwaitTaskRequest* request,
                                           v1::AwaitTaskResponse* response) {
  return UnaryCall::start(
      loop_, calls_, [this, request, response] { return manager_.await_task(*request, response); });
}

ServerUnaryReactor* TaskService::RunTask(CallbackServerContext*, const v1::RunTaskRequest* request,
                                         v1::AwaitTaskResponse* response) {
  return UnaryCall::start(
      loop_, calls_, [this, request, response] { return manager_.run_task(*request, response); });
}

ServerUnaryReactor* TaskService::Gather(CallbackServerContext*, const v1::GatherRequest* request,
                                        v1::GatherResponse* response) {
  return UnaryCall::start(
      loop_, calls_, [this, request, response] { return manager_.gather(*request, response); });
}

ServerUnaryReactor* TaskService::Wait(CallbackServerContext*, const v1::WaitRequest* request,
                                      v1::WaitResponse* response) {
  return UnaryCall::start(loop_, calls_,
                          [this, request, response] { return manager_.wait(*request, response); });
}

grpc::ServerWriteReactor<v1::Task>* TaskService::AsCompleted(
    CallbackServerContext*, const v1::AsCompletedRequest* request) {
  return StreamCall<v1::Task>::start(loop_, calls_,
                                     [this, request](StreamCall<v1::Task>::Emit emit) {
                                       return manager_.as_completed(*request, std::move(emit));
                                     });
}

ServerUnaryReactor* TaskService::CancelTask(CallbackServerContext*,
                                            const v1::CancelTaskRequest* request,
                                            v1::Task* response) {
  return UnaryCall::start(loop_, calls_, [this, request, response] {
    return manager_.cancel_task(*request, response);
  });
}

grpc::ServerWriteReactor<v1::TaskEvent>* TaskService::WatchTasks(
    CallbackServerContext*, const v1::WatchTasksRequest* request) {
  return StreamCall<v1::TaskEvent>::start(loop_, calls_,
                                          [this, request](StreamCall<v1::TaskEvent>::Emit emit) {
                                            return manager_.watch_tasks(*request, std::move(emit));
                                          });
}

}  // namespace taskwire::server
