#include "client/cli/exit_code.h"

namespace taskwire::cli {

ExitCode exit_code_for(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return ExitCode::kOk;
    // The request itself is wrong; the server's message names the field.
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::ALREADY_EXISTS:
      return ExitCode::kUsage;
    case grpc::StatusCode::UNAVAILABLE:
      return ExitCode::kUnreachable;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return ExitCode::kTimeout;
    default:
      return ExitCode::kServerError;
  }
}

std::string_view exit_codes_help() {
  return "Exit codes:\n"
         "  0  success (for wait: its condition was met)\n"
         "  1  the task failed (gather: the first task to fail, without --return-exceptions)\n"
         "  2  usage error, or the server rejected the input (INVALID_ARGUMENT, NOT_FOUND,\n"
         "     OUT_OF_RANGE, ALREADY_EXISTS)\n"
         "  3  server unreachable (UNAVAILABLE or no connection; health: not SERVING)\n"
         "  4  timeout: --timeout passed before the tasks finished, or DEADLINE_EXCEEDED\n"
         "  5  the task was cancelled\n"
         "  6  any other error (the server's RESOURCE_EXHAUSTED, INTERNAL, ...)\n"
         "Errors are one line on stderr, starting with 'taskwire: '.\n"
         "\n"
         "Environment:\n"
         "  TASKWIRE_SERVER  default for --server (else 127.0.0.1:50051)";
}

}  // namespace taskwire::cli
