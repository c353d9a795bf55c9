#include "client/cli/outcome.h"

#include "client/cli/arg_parsing.h"
#include "client/cli/render.h"
#include "client/cli/task_state.h"

namespace taskwire::cli {

void raise_for_outcome(const v1::Task& task) {
  switch (task.state()) {
    case v1::TASK_STATE_SUCCEEDED:
      return;
    case v1::TASK_STATE_FAILED:
      throw CliError(ExitCode::kTaskFailed, "task " + task.id() + " failed: " + outcome_text(task));
    case v1::TASK_STATE_CANCELLED: {
      std::string why = outcome_text(task);
      throw CliError(ExitCode::kCancelled, "task " + task.id() + " was cancelled" +
                                               (why.empty() ? "" : " (" + why + ")"));
    }
    default:
      throw not_finished(task, std::nullopt);
  }
}

CliError not_finished(const v1::Task& task,
                      const std::optional<google::protobuf::Duration>& waited) {
  std::string message = "task " + task.id() + " is still " + std::string(state_name(task.state()));
  if (waited) message += " after " + format_seconds(*waited);
  return CliError(ExitCode::kTimeout, message);
}

}  // namespace taskwire::cli
