// health: the server's grpc.health.v1 status, for people and for container
// health checks.
#include <iostream>

#include "client/cli/cli_error.h"
#include "client/cli/commands.h"
#include "client/cli/health.h"

namespace taskwire::cli {

ExitCode health_command(TaskClient& client, bool json) {
  ServingStatus serving = ServingStatus::kUnknown;
  grpc::Status status = check_health(client.channel(), TaskClient::kCallDeadline, &serving);
  // A health check has one question, "can I use this server?": every
  // failure, whatever its gRPC status, answers "no" with the same code.
  if (!status.ok()) {
    CliError error = status_error(status, client.server());
    if (error.code() == ExitCode::kUnreachable) throw error;
    throw CliError(ExitCode::kUnreachable,
                   "health check of the server at " + client.server() + " failed: " + error.what());
  }
  std::string_view name = serving_status_name(serving);
  if (json) {
    std::cout << "{\"status\":\"" << name << "\"}" << std::endl;
  } else {
    std::cout << name << std::endl;
  }
  if (serving != ServingStatus::kServing) {
    throw CliError(ExitCode::kUnreachable,
                   "the server at " + client.server() + " is " + std::string(name));
  }
  return ExitCode::kOk;
}

}  // namespace taskwire::cli
