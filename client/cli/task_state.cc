#include "client/cli/task_state.h"

#include <cctype>
#include <string>

namespace taskwire::cli {
namespace {

// Lower case, '_' as '-': the one spelling the tables below need.
std::string normalized(std::string_view text) {
  std::string name;
  for (char c : text) {
    name += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return name;
}

}  // namespace

std::string_view state_name(v1::TaskState state) {
  switch (state) {
    case v1::TASK_STATE_PENDING:
      return "pending";
    case v1::TASK_STATE_RUNNING:
      return "running";
    case v1::TASK_STATE_SUCCEEDED:
      return "succeeded";
    case v1::TASK_STATE_FAILED:
      return "failed";
    case v1::TASK_STATE_CANCELLED:
      return "cancelled";
    default:
      return "unspecified";
  }
}

std::optional<v1::TaskState> parse_state_name(std::string_view text) {
  std::string name = normalized(text);
  if (name.starts_with("task-state-")) name.erase(0, std::string_view("task-state-").size());
  if (name == "canceled") name = "cancelled";
  for (auto state : {v1::TASK_STATE_PENDING, v1::TASK_STATE_RUNNING, v1::TASK_STATE_SUCCEEDED,
                     v1::TASK_STATE_FAILED, v1::TASK_STATE_CANCELLED}) {
    if (name == state_name(state)) return state;
  }
  return std::nullopt;
}

std::optional<v1::ReturnWhen> parse_return_when(std::string_view text) {
  std::string name = normalized(text);
  if (name.starts_with("return-when-")) name.erase(0, std::string_view("return-when-").size());
  if (name == "first-completed") return v1::RETURN_WHEN_FIRST_COMPLETED;
  if (name == "first-exception") return v1::RETURN_WHEN_FIRST_EXCEPTION;
  if (name == "all-completed") return v1::RETURN_WHEN_ALL_COMPLETED;
  return std::nullopt;
}

}  // namespace taskwire::cli
