#include "client/cli/cli_error.h"

namespace taskwire::cli {

CliError usage_error(std::string_view argument, std::string_view rule) {
  return CliError(ExitCode::kUsage, one_line(std::string(argument) + ": " + std::string(rule)));
}

CliError status_error(const grpc::Status& status, std::string_view server) {
  std::string detail = one_line(status.error_message());
  ExitCode code = exit_code_for(status.error_code());
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return CliError(code,
                      "cannot reach the server at " + std::string(server) + " (" + detail + ")");
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return CliError(code, "no answer from the server at " + std::string(server) +
                                " before the deadline (" + detail + ")");
    default:
      // The server's messages name the field and the rule already.
      return CliError(code, detail.empty() ? "call failed with gRPC status " +
                                                 std::to_string(status.error_code())
                                           : detail);
  }
}

std::string one_line(std::string_view text) {
  std::string line;
  line.reserve(text.size());
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !line.empty()) line += ' ';
    space = false;
    line += c;
  }
  return line;
}

}  // namespace taskwire::cli
