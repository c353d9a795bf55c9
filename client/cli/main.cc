// taskwire: the command-line client of taskwired.
#include <functional>
#include <iostream>
#include <map>

#include "client/cli/arg_parsing.h"
#include "client/cli/cli_error.h"
#include "client/cli/command_line.h"
#include "client/cli/commands.h"

namespace {

using taskwire::cli::ExitCode;
using taskwire::cli::Options;
using taskwire::cli::TaskClient;

using Command = std::function<ExitCode(TaskClient&, const Options&)>;

const std::map<std::string, Command>& commands() {
  namespace cli = taskwire::cli;
  static const std::map<std::string, Command> table = {
      {"create", [](auto& c, auto& o) { return cli::create_command(c, o.global.json, o.create); }},
      {"run", [](auto& c, auto& o) { return cli::run_command(c, o.global.json, o.run); }},
      {"get", [](auto& c, auto& o) { return cli::get_command(c, o.global.json, o.get_id); }},
      {"await", [](auto& c, auto& o) { return cli::await_command(c, o.global.json, o.await); }},
      {"cancel",
       [](auto& c, auto& o) { return cli::cancel_command(c, o.global.json, o.cancel_id); }},
      {"gather", [](auto& c, auto& o) { return cli::gather_command(c, o.global.json, o.gather); }},
      {"wait", [](auto& c, auto& o) { return cli::wait_command(c, o.global.json, o.wait); }},
      {"ls", [](auto& c, auto& o) { return cli::ls_command(c, o.global.json, o.ls); }},
      {"watch", [](auto& c, auto& o) { return cli::watch_command(c, o.global.json, o.watch); }},
      {"health", [](auto& c, auto& o) { return cli::health_command(c, o.global.json); }},
  };
  return table;
}

}  // namespace

int main(int argc, char** argv) {
  taskwire::cli::CommandLine command_line;
  if (auto code = command_line.parse(argc, argv)) return *code;
  const Options& options = command_line.options();
  try {
    TaskClient client(options.global.server);
    return static_cast<int>(commands().at(command_line.command())(client, options));
  } catch (const taskwire::cli::CliError& error) {
    std::cout.flush();
    std::cerr << "taskwire: " << error.what() << std::endl;
    return static_cast<int>(error.code());
  } catch (const taskwire::cli::BadValue& error) {
    // The validators let only good values through; this is a safety net.
    std::cerr << "taskwire: " << error.what() << std::endl;
    return static_cast<int>(ExitCode::kUsage);
  } catch (const std::exception& error) {
    // Still one line, and a documented code, rather than an abort.
    std::cerr << "taskwire: unexpected error: " << error.what() << std::endl;
    return static_cast<int>(ExitCode::kServerError);
  }
}
