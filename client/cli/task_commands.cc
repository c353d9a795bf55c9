// create, run, get, await and cancel: commands about one task.
#include <iostream>

#include "client/cli/arg_parsing.h"
#include "client/cli/commands.h"
#include "client/cli/json.h"
#include "client/cli/outcome.h"
#include "client/cli/render.h"

namespace taskwire::cli {
namespace {

v1::CreateTaskRequest make_create_request(const TaskSpec& spec) {
  v1::CreateTaskRequest request;
  request.set_kind(spec.kind);
  google::protobuf::Value args = build_task_args(
      spec.args_json.empty() ? std::nullopt : std::optional(spec.args_json), spec.arg_pairs);
  // No args at all is not an empty object: kinds without required fields
  // accept it, and the server echoes back exactly what was sent.
  if (args.kind_case() != google::protobuf::Value::KIND_NOT_SET) *request.mutable_args() = args;
  request.set_name(spec.name);
  for (auto& [key, value] : build_labels(spec.label_pairs))
    (*request.mutable_labels())[key] = value;
  if (!spec.timeout.empty()) *request.mutable_timeout() = parse_seconds(spec.timeout, false);
  request.set_idempotency_key(spec.idempotency_key);
  return request;
}

// Prints what a wait for one task came to and says how to exit: the result
// on success, and for people nothing else, so that `x=$(taskwire run ...)`
// captures just the value.
ExitCode report_awaited(const v1::AwaitTaskResponse& response, bool json,
                        const std::optional<google::protobuf::Duration>& waited) {
  const v1::Task& task = response.task();
  if (json) {
    std::cout << to_json(task) << std::endl;
  } else if (task.state() == v1::TASK_STATE_SUCCEEDED) {
    std::cout << result_json(task) << std::endl;
  }
  if (!response.done()) throw not_finished(task, waited);
  raise_for_outcome(task);
  return ExitCode::kOk;
}

}  // namespace

ExitCode create_command(TaskClient& client, bool json, const TaskSpec& options) {
  v1::Task task = client.create_task(make_create_request(options));
  std::cout << (json ? to_json(task) : task.id()) << std::endl;
  return ExitCode::kOk;
}

ExitCode run_command(TaskClient& client, bool json, const RunOptions& options) {
  v1::RunTaskRequest request;
  *request.mutable_task() = make_create_request(options.task);
  auto wait = optional_wait(options.wait_timeout);
  if (wait) *request.mutable_wait_timeout() = *wait;
  return report_awaited(client.run_task(request), json, wait);
}

ExitCode get_command(TaskClient& client, bool json, const std::string& id) {
  v1::Task task = client.get_task(id);
  if (json) {
    std::cout << to_json(task) << std::endl;
  } else {
    print_task_block(std::cout, task);
  }
  return ExitCode::kOk;
}

ExitCode await_command(TaskClient& client, bool json, const AwaitOptions& options) {
  v1::AwaitTaskRequest request;
  request.set_id(options.id);
  auto wait = optional_wait(options.timeout);
  if (wait) *request.mutable_wait_timeout() = *wait;
  return report_awaited(client.await_task(request), json, wait);
}

ExitCode cancel_command(TaskClient& client, bool json, const std::string& id) {
  // Cancelling is idempotent, and a task that finished first keeps its
  // outcome: either way the command did what was asked, so it exits 0 and
  // shows how the task ended.
  v1::Task task = client.cancel_task(id);
  if (json) {
    std::cout << to_json(task) << std::endl;
  } else {
    print_task_block(std::cout, task);
  }
  return ExitCode::kOk;
}

}  // namespace taskwire::cli
