#pragma once

#include <optional>
#include <string_view>

#include "taskwire/v1/tasks.pb.h"

namespace taskwire::cli {

// The state as people write and read it: "pending", "succeeded", ...
std::string_view state_name(v1::TaskState state);

// Accepts the short names in any case, "canceled", and the enum's own
// names ("TASK_STATE_PENDING").
std::optional<v1::TaskState> parse_state_name(std::string_view text);

// The names parse_state_name accepts, for messages and --help.
inline constexpr std::string_view kStateNames = "pending, running, succeeded, failed, cancelled";

// "first-completed", "first-exception", "all-completed" (or with '_', any
// case).
std::optional<v1::ReturnWhen> parse_return_when(std::string_view text);

inline bool is_final(v1::TaskState state) {
  return state == v1::TASK_STATE_SUCCEEDED || state == v1::TASK_STATE_FAILED ||
         state == v1::TASK_STATE_CANCELLED;
}

}  // namespace taskwire::cli
