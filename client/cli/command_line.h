#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "client/cli/options.h"

namespace taskwire::cli {

// taskwire's arguments: the subcommands, their options and help, on CLI11.
class CommandLine {
 public:
  CommandLine();
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  // Parses the arguments. Returns an exit code when the process should stop
  // here: 0 after printing help, 2 after printing a one-line usage error.
  std::optional<int> parse(int argc, char** argv);

  const Options& options() const { return options_; }
  // The subcommand given ("create", "ls", ...); set once parse succeeded.
  const std::string& command() const { return command_; }

 private:
  void add_task_commands();
  void add_group_commands();
  void add_listing_commands();

  Options options_;
  CLI::App app_;
  std::string command_;
};

}  // namespace taskwire::cli
