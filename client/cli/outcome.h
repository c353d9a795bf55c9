#pragma once

#include <google/protobuf/duration.pb.h>

#include <optional>

#include "client/cli/cli_error.h"
#include "taskwire/v1/tasks.pb.h"

namespace taskwire::cli {

// Throws the CliError a finished task's outcome calls for: exit 1 with its
// error when it failed, 5 when it was cancelled. Returns when it succeeded.
void raise_for_outcome(const v1::Task& task);

// The error for a wait that ended (after `waited`, if known) before the
// task finished: exit 4.
CliError not_finished(const v1::Task& task,
                      const std::optional<google::protobuf::Duration>& waited);

}  // namespace taskwire::cli
