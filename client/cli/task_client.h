#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "taskwire/v1/tasks.grpc.pb.h"

namespace taskwire::cli {

// The TaskService, one synchronous call at a time. Every method either
// returns the answer or throws CliError (cli_error.h) with the exit code for
// the call's status, so commands only handle success.
//
// Deadlines: calls that answer at once get kCallDeadline; calls that wait
// (await, run, gather, wait, as_completed) get their wait timeout plus
// kDeadlineSlack, or none when they wait without a limit: the server's own
// timeout is what ends the wait, the deadline only guards against a server
// that stopped answering.
class TaskClient {
 public:
  static constexpr std::chrono::seconds kCallDeadline{10};
  static constexpr std::chrono::seconds kDeadlineSlack{5};

  explicit TaskClient(std::string server);

  const std::string& server() const { return server_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  v1::Task create_task(const v1::CreateTaskRequest& request);
  v1::AwaitTaskResponse run_task(const v1::RunTaskRequest& request);
  v1::Task get_task(const std::string& id);
  v1::ListTasksResponse list_tasks(const v1::ListTasksRequest& request);
  v1::AwaitTaskResponse await_task(const v1::AwaitTaskRequest& request);
  v1::GatherResponse gather(const v1::GatherRequest& request);
  v1::WaitResponse wait(const v1::WaitRequest& request);
  v1::Task cancel_task(const std::string& id);

  // Calls on_task for each task as it finishes, until every task has or
  // on_task returns false. Returns false if the request's timeout ended the
  // stream first.
  bool as_completed(const v1::AsCompletedRequest& request,
                    const std::function<bool(const v1::Task&)>& on_task);

  // Calls on_event for each event until the server ends the stream.
  void watch_tasks(const v1::WatchTasksRequest& request,
                   const std::function<void(const v1::TaskEvent&)>& on_event);

 private:
  // The status as a CliError, unless it is OK.
  void check(const grpc::Status& status) const;

  std::string server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TaskService::Stub> stub_;
};

// A context whose deadline is now + wait + slack when wait is set, none
// otherwise.
void set_wait_deadline(grpc::ClientContext& context,
                       const std::optional<google::protobuf::Duration>& wait);

}  // namespace taskwire::cli
