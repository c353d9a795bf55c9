#include "client/cli/command_line.h"

#include <limits>

#include "client/cli/arg_parsing.h"
#include "client/cli/cli_error.h"
#include "client/cli/exit_code.h"
#include "client/cli/task_state.h"

namespace taskwire::cli {
namespace {

constexpr char kSubcommandFooter[] =
    "Global options (--server, --json) may also follow the subcommand.\n"
    "Exit codes: see 'taskwire --help'.";

// A CLI11 validator from one of arg_parsing.h's parsers: the parser's rule
// becomes CLI11's message, which CLI11 prefixes with the option's name.
template <typename Parse>
CLI::Validator checked_by(Parse parse) {
  return CLI::Validator(
      [parse](std::string& text) -> std::string {
        try {
          parse(text);
          return {};
        } catch (const BadValue& e) {
          return e.what();
        }
      },
      "");
}

CLI::Validator wait_seconds() {
  return checked_by([](const std::string& text) { parse_seconds(text, /*allow_zero=*/true); });
}

CLI::Validator key_value() {
  return checked_by([](const std::string& text) { parse_key_value(text); });
}

// The first word after CLI11's "...not expected: ", the argument at fault.
std::string first_extra(const std::string& message) {
  auto colon = message.find(": ");
  if (colon == std::string::npos) return "";
  std::string rest = message.substr(colon + 2);
  return rest.substr(0, rest.find(' '));
}

// CLI11's own failure messages, rewritten where they would confuse, and
// always on one line: a script's log, or a person, reads one line per error.
std::string one_line_failure(const CLI::App* app, const CLI::Error& error) {
  std::string message = error.what();
  bool in_subcommand = !app->get_subcommands().empty();
  if (dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr) {
    std::string extra = first_extra(message);
    if (extra.starts_with("-")) {
      message = "unknown option '" + extra + "'";
    } else if (!in_subcommand) {
      message = "unknown subcommand '" + extra + "'; see 'taskwire --help'";
    } else {
      message = "unexpected argument '" + extra + "'";
    }
  } else if (dynamic_cast<const CLI::RequiredError*>(&error) != nullptr && !in_subcommand) {
    // CLI11 reports a misspelt subcommand as a missing one; what it could
    // not place is the misspelling.
    std::vector<std::string> extras = app->remaining();
    if (extras.empty()) {
      message = "missing subcommand; see 'taskwire --help'";
    } else if (extras.front().starts_with("-")) {
      message = "unknown option '" + extras.front() + "'";
    } else {
      message = "unknown subcommand '" + extras.front() + "'; see 'taskwire --help'";
    }
  }
  return "taskwire: " + one_line(message) + "\n";
}

// An option that takes one value per use and may be used again:
// `--arg a=1 --arg b=2 ID` (without this, CLI11 would take ID as a value).
CLI::Option* repeatable(CLI::Option* option) {
  return option->expected(1)->allow_extra_args(false)->multi_option_policy(
      CLI::MultiOptionPolicy::TakeAll);
}

// A subcommand whose summary shows in taskwire --help, and whose own --help
// adds the details and the notes common to all.
CLI::App* add_command(CLI::App& app, const std::string& name, const std::string& summary,
                      const std::string& details) {
  CLI::App* command = app.add_subcommand(name, summary);
  command->footer(details + "\n\n" + kSubcommandFooter);
  return command;
}

CLI::Option* add_ids(CLI::App* command, std::vector<std::string>& ids, const std::string& help) {
  return command->add_option("ID", ids, help)->type_name("");
}

CLI::Option* add_id(CLI::App* command, std::string& id) {
  return command->add_option("ID", id, "The task's id")->type_name("")->required();
}

CLI::Option* add_wait_timeout(CLI::App* command, const std::string& name, std::string& timeout,
                              const std::string& help) {
  return command->add_option(name, timeout, help)->type_name("SECONDS")->check(wait_seconds());
}

void add_task_spec(CLI::App* command, TaskSpec& spec) {
  command
      ->add_option("KIND", spec.kind, "The kind of task (built in: sleep, wait_random, echo, fail)")
      ->type_name("")
      ->required();
  repeatable(command->add_option("--arg", spec.arg_pairs,
                                 "An argument of the task; VALUE is JSON when it parses as JSON "
                                 "(2, true, [1], \"2\"), else a string. Repeatable"))
      ->type_name("KEY=VALUE")
      ->check(key_value());
  command
      ->add_option("--args", spec.args_json,
                   "The task's arguments as one JSON value; --arg pairs are laid over it")
      ->type_name("JSON")
      ->check(checked_by([](const std::string& text) { parse_json_argument(text); }));
  command->add_option("--name", spec.name, "A name for people")->type_name("NAME");
  repeatable(command->add_option("--label", spec.label_pairs, "A label. Repeatable"))
      ->type_name("KEY=VALUE")
      ->check(key_value());
  command
      ->add_option("--timeout", spec.timeout,
                   "The task's own time limit, from creation: past it the task is cancelled and "
                   "fails with TimeoutError")
      ->type_name("SECONDS")
      ->check(checked_by([](const std::string& text) { parse_seconds(text, false); }));
  command
      ->add_option("--idempotency-key", spec.idempotency_key,
                   "A second create with the same key returns the first task")
      ->type_name("KEY");
}

// what_state: "tasks in" for a listing, "changes into" for a watch.
void add_filters(CLI::App* command, const std::string& what_state, std::vector<std::string>& states,
                 std::string& kind, std::vector<std::string>& label_pairs) {
  repeatable(command->add_option("--state", states,
                                 "Only " + what_state + " this state: " + std::string(kStateNames) +
                                     ". Repeatable, or comma-separated"))
      ->type_name("STATE")
      ->delimiter(',')
      ->check(checked_by([](const std::string& text) { parse_state(text); }));
  command->add_option("--kind", kind, "Only tasks of this kind")->type_name("KIND");
  repeatable(command->add_option("--label", label_pairs, "Only tasks with this label. Repeatable"))
      ->type_name("KEY=VALUE")
      ->check(key_value());
}

}  // namespace

CommandLine::CommandLine()
    : app_(
          "taskwire: create, await, gather and cancel tasks on a taskwired server\n"
          "(Python asyncio's task model over gRPC). 'taskwire SUBCOMMAND --help' for more.",
          "taskwire") {
  app_.footer(std::string(exit_codes_help()));
  app_.require_subcommand(1);
  // Lets global options follow the subcommand: `taskwire ls --json`.
  app_.fallthrough();
  app_.failure_message(one_line_failure);
  app_.add_option("--server", options_.global.server, "The taskwired server")
      ->type_name("HOST:PORT")
      ->envname("TASKWIRE_SERVER")
      ->capture_default_str()
      ->check(checked_by([](const std::string& text) {
        if (text.empty()) throw BadValue("must not be empty");
      }));
  app_.add_flag("--json", options_.global.json,
                "Machine-readable output: JSON, one object per line (per task; per event for "
                "watch)");
  add_task_commands();
  add_group_commands();
  add_listing_commands();
}

void CommandLine::add_task_commands() {
  CLI::App* create = add_command(app_, "create", "Create a task and print its id",
                                 "Prints the new task's id (with --json, the task). Examples:\n"
                                 "  taskwire create sleep --arg seconds=2 --label team=a\n"
                                 "  taskwire create echo --args '{\"value\": [1, 2]}'");
  add_task_spec(create, options_.create);

  CLI::App* run = add_command(
      app_, "run", "Create a task and await it in one call",
      "Prints the task's result as JSON (with --json, the task). Exits 1 if the task failed,\n"
      "5 if it was cancelled, 4 if --wait-timeout passed first (the task keeps running).\n"
      "--timeout is the task's own limit: past it, the task fails with TimeoutError.\n"
      "Example: taskwire run echo --arg value=hi   # prints \"hi\"");
  add_task_spec(run, options_.run.task);
  add_wait_timeout(run, "--wait-timeout", options_.run.wait_timeout,
                   "Stop waiting after this long (exit 4)");

  CLI::App* get = add_command(app_, "get", "Show a task",
                              "Prints the task as 'key: value' lines (with --json, the task).");
  add_id(get, options_.get_id);

  CLI::App* await = add_command(
      app_, "await", "Wait for a task to finish and print its result",
      "Prints the task's result as JSON (with --json, the task). Exits 1 if the task failed,\n"
      "5 if it was cancelled, 4 if --timeout passed first (the task keeps running).");
  add_id(await, options_.await.id);
  add_wait_timeout(await, "--timeout", options_.await.timeout,
                   "Stop waiting after this long (exit 4); 0 only looks");

  CLI::App* cancel = add_command(
      app_, "cancel", "Cancel a task",
      "Waits until the task has stopped, then shows it as get does. A finished task is left\n"
      "as it is. Exits 0 either way.");
  add_id(cancel, options_.cancel_id);

  add_command(app_, "health", "Check that the server is serving",
              "Calls grpc.health.v1.Health/Check for the whole server. Prints SERVING (with\n"
              "--json, {\"status\": \"SERVING\"}) and exits 0; any other status, or no answer,\n"
              "exits 3. For containers: HEALTHCHECK CMD taskwire health");
}

void CommandLine::add_group_commands() {
  CLI::App* gather = add_command(
      app_, "gather", "Wait for tasks to finish, like asyncio.gather",
      "Prints the tasks in the order given, with their results (with --json, one task per\n"
      "line). Without --return-exceptions it answers at the first task to fail or be\n"
      "cancelled and exits 1 (failed) or 5 (cancelled); the others keep running. With it,\n"
      "it waits for all and exits 0. Exits 4 if --timeout passes first. When stderr is a\n"
      "terminal, shows a progress bar there.");
  add_ids(gather, options_.gather.ids, "The tasks' ids, in the order wanted")->required();
  gather->add_flag("--return-exceptions", options_.gather.return_exceptions,
                   "Wait for every task whatever its outcome");
  add_wait_timeout(gather, "--timeout", options_.gather.timeout,
                   "Stop waiting after this long (exit 4)");

  CLI::App* wait = add_command(
      app_, "wait", "Wait for some of the tasks to finish, like asyncio.wait",
      "Prints every task given, the finished ones with their results (with --json, one\n"
      "object {\"done\": [tasks], \"pending_ids\": [ids]}). Exits 0 once the condition is met,\n"
      "whatever the tasks' outcomes, or 4 if --timeout passes first. Cancels nothing. When\n"
      "stderr is a terminal, shows a progress bar there.");
  add_ids(wait, options_.wait.ids, "The tasks' ids")->required();
  wait->add_option("--return-when", options_.wait.return_when,
                   "first-completed, first-exception or all-completed")
      ->type_name("WHEN")
      ->capture_default_str()
      ->check(checked_by([](const std::string& text) { parse_return_when_argument(text); }));
  add_wait_timeout(wait, "--timeout", options_.wait.timeout,
                   "Stop waiting after this long; exit 4 if the condition was not met");
  wait->add_option("--count", options_.wait.count,
                   "Return once this many tasks are done, if that comes first")
      ->type_name("N")
      ->check(checked_by([](const std::string& text) {
        parse_positive_count(text, std::numeric_limits<std::uint32_t>::max());
      }));
}

void CommandLine::add_listing_commands() {
  CLI::App* ls = add_command(
      app_, "ls", "List tasks, oldest first",
      "Pages through every matching task and prints a table (with --json, one task per line,\n"
      "as the pages arrive).");
  add_filters(ls, "tasks in", options_.ls.states, options_.ls.kind, options_.ls.label_pairs);
  ls->add_option("--limit", options_.ls.limit, "At most this many tasks (default: all)")
      ->type_name("N")
      ->check(checked_by([](const std::string& text) {
        parse_positive_count(text, std::numeric_limits<std::uint32_t>::max());
      }));

  CLI::App* watch = add_command(
      app_, "watch", "Print task state changes as they happen",
      "Prints one line per change from now on: time, id, kind, old -> new state, and the\n"
      "outcome (with --json, one TaskEvent per line). Runs until interrupted (Ctrl-C);\n"
      "exits 3 if the server ends the stream.");
  add_filters(watch, "changes into", options_.watch.states, options_.watch.kind,
              options_.watch.label_pairs);
  add_ids(watch, options_.watch.ids, "Only these tasks");
}

std::optional<int> CommandLine::parse(int argc, char** argv) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // Prints the help, or the one-line failure message. CLI11's own exit
    // codes (100 and up) are not taskwire's: every usage error exits 2.
    int code = app_.exit(error);
    return code == 0 ? 0 : static_cast<int>(ExitCode::kUsage);
  }
  for (const CLI::App* command : app_.get_subcommands()) command_ = command->get_name();
  return std::nullopt;
}

}  // namespace taskwire::cli
