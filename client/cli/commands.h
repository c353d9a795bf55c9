#pragma once

#include "client/cli/exit_code.h"
#include "client/cli/options.h"
#include "client/cli/task_client.h"

namespace taskwire::cli {

// One function per subcommand. Each prints its answer on stdout (JSON, one
// object per line, when json is set) and returns the exit code, or throws
// CliError, which main prints as one line on stderr.

// task_commands.cc
ExitCode create_command(TaskClient& client, bool json, const TaskSpec& options);
ExitCode run_command(TaskClient& client, bool json, const RunOptions& options);
ExitCode get_command(TaskClient& client, bool json, const std::string& id);
ExitCode await_command(TaskClient& client, bool json, const AwaitOptions& options);
ExitCode cancel_command(TaskClient& client, bool json, const std::string& id);

// group_commands.cc
ExitCode gather_command(TaskClient& client, bool json, const GatherOptions& options);
ExitCode wait_command(TaskClient& client, bool json, const WaitOptions& options);

// listing_commands.cc
ExitCode ls_command(TaskClient& client, bool json, const ListOptions& options);
ExitCode watch_command(TaskClient& client, bool json, const WatchOptions& options);

// health_command.cc
ExitCode health_command(TaskClient& client, bool json);

}  // namespace taskwire::cli
