#include "client/cli/task_client.h"

#include "client/cli/cli_error.h"

namespace taskwire::cli {
namespace {

std::shared_ptr<grpc::Channel> make_channel(const std::string& server) {
  grpc::ChannelArguments arguments;
  // A page of ls or a gather can hold many tasks, each with up to the
  // server's args limit; the server already bounds what it sends.
  arguments.SetMaxReceiveMessageSize(-1);
  return grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(), arguments);
}

void set_call_deadline(grpc::ClientContext& context) {
  context.set_deadline(std::chrono::system_clock::now() + TaskClient::kCallDeadline);
}

std::optional<google::protobuf::Duration> optional_duration(bool has,
                                                            const google::protobuf::Duration& d) {
  if (!has) return std::nullopt;
  return d;
}

}  // namespace

void set_wait_deadline(grpc::ClientContext& context,
                       const std::optional<google::protobuf::Duration>& wait) {
  if (!wait) return;
  auto limit = std::chrono::seconds(wait->seconds()) + std::chrono::nanoseconds(wait->nanos());
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::duration_cast<std::chrono::system_clock::duration>(limit) +
                       TaskClient::kDeadlineSlack);
}

TaskClient::TaskClient(std::string server)
    : server_(std::move(server)),
      channel_(make_channel(server_)),
      stub_(v1::TaskService::NewStub(channel_)) {}

void TaskClient::check(const grpc::Status& status) const {
  if (!status.ok()) throw status_error(status, server_);
}

v1::Task TaskClient::create_task(const v1::CreateTaskRequest& request) {
  grpc::ClientContext context;
  set_call_deadline(context);
  v1::Task task;
  check(stub_->CreateTask(&context, request, &task));
  return task;
}

v1::AwaitTaskResponse TaskClient::run_task(const v1::RunTaskRequest& request) {
  grpc::ClientContext context;
  set_wait_deadline(context, optional_duration(request.has_wait_timeout(), request.wait_timeout()));
  v1::AwaitTaskResponse response;
  check(stub_->RunTask(&context, request, &response));
  return response;
}

v1::Task TaskClient::get_task(const std::string& id) {
  grpc::ClientContext context;
  set_call_deadline(context);
  v1::GetTaskRequest request;
  request.set_id(id);
  v1::Task task;
  check(stub_->GetTask(&context, request, &task));
  return task;
}

v1::ListTasksResponse TaskClient::list_tasks(const v1::ListTasksRequest& request) {
  grpc::ClientContext context;
  set_call_deadline(context);
  v1::ListTasksResponse response;
  check(stub_->ListTasks(&context, request, &response));
  return response;
}

v1::AwaitTaskResponse TaskClient::await_task(const v1::AwaitTaskRequest& request) {
  grpc::ClientContext context;
  set_wait_deadline(context, optional_duration(request.has_wait_timeout(), request.wait_timeout()));
  v1::AwaitTaskResponse response;
  check(stub_->AwaitTask(&context, request, &response));
  return response;
}

v1::GatherResponse TaskClient::gather(const v1::GatherRequest& request) {
  grpc::ClientContext context;
  set_wait_deadline(context, optional_duration(request.has_wait_timeout(), request.wait_timeout()));
  v1::GatherResponse response;
  check(stub_->Gather(&context, request, &response));
  return response;
}

v1::WaitResponse TaskClient::wait(const v1::WaitRequest& request) {
  grpc::ClientContext context;
  set_wait_deadline(context, optional_duration(request.has_timeout(), request.timeout()));
  v1::WaitResponse response;
  check(stub_->Wait(&context, request, &response));
  return response;
}

v1::Task TaskClient::cancel_task(const std::string& id) {
  grpc::ClientContext context;
  set_call_deadline(context);
  v1::CancelTaskRequest request;
  request.set_id(id);
  v1::Task task;
  check(stub_->CancelTask(&context, request, &task));
  return task;
}

bool TaskClient::as_completed(const v1::AsCompletedRequest& request,
                              const std::function<bool(const v1::Task&)>& on_task) {
  grpc::ClientContext context;
  set_wait_deadline(context, optional_duration(request.has_timeout(), request.timeout()));
  auto reader = stub_->AsCompleted(&context, request);
  v1::Task task;
  bool stopped = false;
  while (reader->Read(&task)) {
    if (!on_task(task)) {
      // Ends the stream; Finish then reports CANCELLED, which we asked for.
      context.TryCancel();
      stopped = true;
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (stopped) return true;
  // The request's timeout, not a failure: the caller reports what is done.
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) return false;
  check(status);
  return true;
}

void TaskClient::watch_tasks(const v1::WatchTasksRequest& request,
                             const std::function<void(const v1::TaskEvent&)>& on_event) {
  grpc::ClientContext context;
  auto reader = stub_->WatchTasks(&context, request);
  v1::TaskEvent event;
  while (reader->Read(&event)) on_event(event);
  check(reader->Finish());
}

}  // namespace taskwire::cli
