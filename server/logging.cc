#include "server/logging.h"

#include <spdlog/details/os.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <stdexcept>

namespace taskwire::server {

namespace detail {
thread_local const LogFields* current_log_fields = nullptr;
}  // namespace detail

namespace {

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// One JSON object per line on stderr, for log collectors.
class JsonLinesSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    auto since_epoch = msg.time.time_since_epoch();
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count();
    std::string line = "{\"ts_ms\":" + std::to_string(millis) + ",\"level\":";
    auto level = spdlog::level::to_string_view(msg.level);
    append_json_string(line, std::string_view(level.data(), level.size()));
    line += ",\"message\":";
    append_json_string(line, std::string_view(msg.payload.data(), msg.payload.size()));
    if (const LogFields* fields = detail::current_log_fields) {
      if (!fields->task_id.empty()) {
        line += ",\"task_id\":";
        append_json_string(line, fields->task_id);
      }
      if (!fields->trace_id.empty()) {
        line += ",\"trace_id\":";
        append_json_string(line, fields->trace_id);
      }
    }
    line += "}\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }
};

// "%*" in a text pattern: the line's LogFields, as " key=value" pairs.
class LogFieldsFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const LogFields* fields = detail::current_log_fields;
    if (fields == nullptr) return;
    append(dest, " task_id=", fields->task_id);
    append(dest, " trace_id=", fields->trace_id);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<LogFieldsFlag>();
  }

 private:
  static void append(spdlog::memory_buf_t& dest, std::string_view key, std::string_view value) {
    if (value.empty()) return;
    dest.append(key.data(), key.data() + key.size());
    dest.append(value.data(), value.data() + value.size());
  }
};

}  // namespace

void configure_logging(const std::string& format, const std::string& level) {
  std::shared_ptr<spdlog::logger> logger;
  if (format == "json") {
    logger = std::make_shared<spdlog::logger>("taskwired", std::make_shared<JsonLinesSink>());
  } else if (format == "text") {
    logger = std::make_shared<spdlog::logger>(
        "taskwired", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<LogFieldsFlag>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v%*");
    logger->set_formatter(std::move(formatter));
  } else {
    throw std::invalid_argument("--log-format: must be text or json, got '" + format + "'");
  }
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    throw std::invalid_argument(
        "--log-level: must be trace, debug, info, warn, error, critical or off, got '" + level +
        "'");
  }
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace taskwire::server
