#pragma once

#include <grpcpp/grpcpp.h>

#include "core/event_loop.h"
#include "server/call_counter.h"
#include "server/task_manager.h"
#include "taskwire/v1/tasks.grpc.pb.h"

namespace taskwire::server {

// The gRPC face of the TaskManager: every call is handed to the loop, where
// the manager serves it; no gRPC thread ever waits.
class TaskService final : public v1::TaskService::CallbackService {
 public:
  TaskService(EventLoop& loop, TaskManager& manager, CallCounter& calls)
      : loop_(loop), manager_(manager), calls_(calls) {}

  grpc::ServerUnaryReactor* CreateTask(grpc::CallbackServerContext*,
                                       const v1::CreateTaskRequest* request,
                                       v1::Task* response) override;
  grpc::ServerUnaryReactor* CreateTasks(grpc::CallbackServerContext*,
                                        const v1::CreateTasksRequest* request,
                                        v1::CreateTasksResponse* response) override;
  grpc::ServerUnaryReactor* GetTask(grpc::CallbackServerContext*, const v1::GetTaskRequest* request,
                                    v1::Task* response) override;
  grpc::ServerUnaryReactor* ListTasks(grpc::CallbackServerContext*,
                                      const v1::ListTasksRequest* request,
                                      v1::ListTasksResponse* response) override;
  grpc::ServerUnaryReactor* AwaitTask(grpc::CallbackServerContext*,
                                      const v1::AwaitTaskRequest* request,
                                      v1::AwaitTaskResponse* response) override;
  grpc::ServerUnaryReactor* RunTask(grpc::CallbackServerContext*, const v1::RunTaskRequest* request,
                                    v1::AwaitTaskResponse* response) override;
  grpc::ServerUnaryReactor* Gather(grpc::CallbackServerContext*, const v1::GatherRequest* request,
                                   v1::GatherResponse* response) override;
  grpc::ServerUnaryReactor* Wait(grpc::CallbackServerContext*, const v1::WaitRequest* request,
                                 v1::WaitResponse* response) override;
  grpc::ServerWriteReactor<v1::Task>* AsCompleted(grpc::CallbackServerContext*,
                                                  const v1::AsCompletedRequest* request) override;
  grpc::ServerUnaryReactor* CancelTask(grpc::CallbackServerContext*,
                                       const v1::CancelTaskRequest* request,
                                       v1::Task* response) override;
  grpc::ServerWriteReactor<v1::TaskEvent>* WatchTasks(
      grpc::CallbackServerContext*, const v1::WatchTasksRequest* request) override;

 private:
  EventLoop& loop_;
  TaskManager& manager_;
  CallCounter& calls_;
};

}  // namespace taskwire::server
