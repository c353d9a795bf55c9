#pragma once

#include <grpcpp/grpcpp.h>

#include <string_view>

namespace taskwire::cli {

// The process's exit status. Scripts and container health checks branch on
// these, so the numbers are part of the CLI's interface: never renumber.
enum class ExitCode {
  kOk = 0,
  // The task (or, for gather, the first task to go wrong) failed.
  kTaskFailed = 1,
  // Bad arguments, or the server rejected the input (INVALID_ARGUMENT,
  // NOT_FOUND, ...): running the same command again will fail again.
  kUsage = 2,
  // No answer from the server (UNAVAILABLE: down, refusing, shutting down).
  kUnreachable = 3,
  // A wait limit passed before the tasks finished, or a call's deadline did.
  kTimeout = 4,
  // The task was cancelled.
  kCancelled = 5,
  // Any other refusal or failure of the server (RESOURCE_EXHAUSTED, INTERNAL,
  // ...): possibly worth retrying later, but not the user's input. Also any
  // unexpected error in the CLI itself.
  kServerError = 6,
};

// The exit status for a failed call with this code.
ExitCode exit_code_for(grpc::StatusCode code);

// The table of exit codes for the top-level --help.
std::string_view exit_codes_help();

}  // namespace taskwire::cli
