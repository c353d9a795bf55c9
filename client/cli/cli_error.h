#pragma once

#include <grpcpp/grpcpp.h>

#include <stdexcept>
#include <string>
#include <string_view>

#include "client/cli/exit_code.h"

namespace taskwire::cli {

// Ends the command: main prints "taskwire: <what()>" as one line on stderr
// and exits with code(). Commands throw it rather than returning codes so
// that a failed call deep in a helper cannot be ignored by accident.
class CliError : public std::runtime_error {
 public:
  CliError(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

// A bad value of a command-line argument: "--timeout: must be ...".
CliError usage_error(std::string_view argument, std::string_view rule);

// The error for a call that failed with this status, against this server.
CliError status_error(const grpc::Status& status, std::string_view server);

// Text squeezed onto one line, so that every error is exactly one line.
std::string one_line(std::string_view text);

}  // namespace taskwire::cli
