#include "client/cli/render.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <utility>

#include "client/cli/arg_parsing.h"
#include "client/cli/cli_error.h"
#include "client/cli/json.h"
#include "client/cli/table.h"
#include "client/cli/task_state.h"

namespace taskwire::cli {
namespace {

// The moment the task entered its current state, the most useful time for
// a line about that state.
const google::protobuf::Timestamp* state_time(const v1::Task& task) {
  if (is_final(task.state()) && task.has_finish_time()) return &task.finish_time();
  if (task.state() == v1::TASK_STATE_RUNNING && task.has_start_time()) return &task.start_time();
  return task.has_create_time() ? &task.create_time() : nullptr;
}

}  // namespace

std::string result_json(const v1::Task& task) {
  // An unset Value prints as nothing at all, which is not JSON.
  return task.has_result() ? to_json(task.result()) : "null";
}

std::string outcome_text(const v1::Task& task) {
  switch (task.state()) {
    case v1::TASK_STATE_SUCCEEDED:
      return result_json(task);
    case v1::TASK_STATE_FAILED:
    case v1::TASK_STATE_CANCELLED: {
      const auto& error = task.error();
      if (error.type().empty()) return one_line(error.message());
      if (error.message().empty()) return error.type();
      return error.type() + ": " + one_line(error.message());
    }
    default:
      return "";
  }
}

std::string format_time(const google::protobuf::Timestamp& time) {
  std::time_t seconds = static_cast<std::time_t>(time.seconds());
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &utc);
  char text[48];
  std::snprintf(text, sizeof text, "%s.%03dZ", date, time.nanos() / 1'000'000);
  return text;
}

void print_task_block(std::ostream& out, const v1::Task& task) {
  std::vector<std::pair<std::string, std::string>> lines;
  lines.emplace_back("id", task.id());
  lines.emplace_back("kind", task.kind());
  if (!task.name().empty()) lines.emplace_back("name", task.name());
  lines.emplace_back("state", std::string(state_name(task.state())));
  if (task.state() == v1::TASK_STATE_SUCCEEDED) lines.emplace_back("result", outcome_text(task));
  if (task.has_error()) lines.emplace_back("error", outcome_text(task));
  if (task.has_args()) lines.emplace_back("args", to_json(task.args()));
  if (!task.labels().empty()) {
    // Sorted, so that the same task always prints the same way.
    std::map<std::string, std::string> sorted(task.labels().begin(), task.labels().end());
    std::string labels;
    for (const auto& [key, value] : sorted) {
      if (!labels.empty()) labels += ", ";
      labels += key + "=" + value;
    }
    lines.emplace_back("labels", labels);
  }
  if (task.has_timeout()) lines.emplace_back("timeout", format_seconds(task.timeout()));
  if (!task.idempotency_key().empty())
    lines.emplace_back("idempotency_key", task.idempotency_key());
  lines.emplace_back("attempt", std::to_string(task.attempt()));
  if (task.has_create_time()) lines.emplace_back("created", format_time(task.create_time()));
  if (task.has_start_time()) lines.emplace_back("started", format_time(task.start_time()));
  if (task.has_finish_time()) lines.emplace_back("finished", format_time(task.finish_time()));

  std::size_t width = 0;
  for (const auto& [key, value] : lines) width = std::max(width, key.size());
  for (const auto& [key, value] : lines) {
    out << key << ':' << std::string(width - key.size() + 1, ' ') << value << '\n';
  }
}

void print_task_list(std::ostream& out, const std::vector<v1::Task>& tasks) {
  Table table({"ID", "KIND", "STATE", "NAME", "CREATED"});
  for (const auto& task : tasks) {
    table.add_row({task.id(), task.kind(), std::string(state_name(task.state())), task.name(),
                   task.has_create_time() ? format_time(task.create_time()) : ""});
  }
  table.print(out);
}

void print_outcome_table(std::ostream& out, const std::vector<std::string>& ids,
                         const std::vector<const v1::Task*>& tasks) {
  Table table({"ID", "KIND", "STATE", "RESULT"});
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const v1::Task* task = tasks[i];
    if (task == nullptr) {
      table.add_row({ids[i], "", "not done", ""});
    } else {
      table.add_row(
          {task->id(), task->kind(), std::string(state_name(task->state())), outcome_text(*task)});
    }
  }
  table.print(out);
}

std::string event_line(const v1::TaskEvent& event) {
  const v1::Task& task = event.task();
  const auto* time = state_time(task);
  std::string line = time != nullptr ? format_time(*time) : std::string(24, '-');
  line += "  " + task.id() + "  " + task.kind() + "  ";
  line += event.previous_state() == v1::TASK_STATE_UNSPECIFIED
              ? std::string("new")
              : std::string(state_name(event.previous_state()));
  line += " -> " + std::string(state_name(task.state()));
  if (!task.name().empty()) line += "  name=" + task.name();
  if (is_final(task.state())) line += "  " + outcome_text(task);
  return line;
}

}  // namespace taskwire::cli
