#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>
#include <utility>

namespace taskwire::server {

// Sets up spdlog for the process: "text" (human-readable lines) or "json"
// (one JSON object per line), at the given level (trace, debug, info,
// warn, error, critical, off). Throws std::invalid_argument on an unknown
// format or level.
void configure_logging(const std::string& format, const std::string& level);

// What a log line is about, beyond its message: in JSON lines the keys
// "task_id" and "trace_id" (when not empty), in text lines " task_id=..."
// and " trace_id=..." after the message.
struct LogFields {
  std::string_view task_id;
  std::string_view trace_id;
};

namespace detail {
// The fields of the line being logged on this thread (spdlog's loggers
// here are synchronous, so the sink runs on the logging thread).
extern thread_local const LogFields* current_log_fields;
}  // namespace detail

// Logs one line with `fields`. The level is checked first, so callers that
// build fields (an id's text) should check spdlog::should_log themselves.
template <typename... Args>
void log_with(spdlog::level::level_enum level, const LogFields& fields,
              spdlog::format_string_t<Args...> format, Args&&... args) {
  if (!spdlog::should_log(level)) return;
  detail::current_log_fields = &fields;
  spdlog::log(level, format, std::forward<Args>(args)...);
  detail::current_log_fields = nullptr;
}

}  // namespace taskwire::server
