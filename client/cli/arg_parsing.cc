#include "client/cli/arg_parsing.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "client/cli/cli_error.h"
#include "client/cli/json.h"
#include "client/cli/task_state.h"

namespace taskwire::cli {
namespace {

constexpr double kMaxSeconds = 365.0 * 24 * 3600;

// Echoes the input in messages, cut short so that one line stays one line
// on a terminal even for a pasted document.
std::string quoted(std::string_view text) {
  constexpr std::size_t kMaxEcho = 60;
  std::string echo = one_line(text.size() > kMaxEcho ? text.substr(0, kMaxEcho) : text);
  if (text.size() > kMaxEcho) echo += "...";
  return "'" + echo + "'";
}

}  // namespace

google::protobuf::Duration parse_seconds(std::string_view text, bool allow_zero) {
  std::string rule = allow_zero ? "must be a non-negative number of seconds, got "
                                : "must be a positive number of seconds, got ";
  double seconds = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(seconds) || seconds < 0 || (seconds == 0 && !allow_zero)) {
    throw BadValue(rule + quoted(text));
  }
  if (seconds > kMaxSeconds) {
    throw BadValue("must be at most 31536000 seconds (one year), got " + quoted(text));
  }
  google::protobuf::Duration duration;
  double whole = std::floor(seconds);
  auto nanos = static_cast<std::int32_t>(std::llround((seconds - whole) * 1e9));
  if (nanos >= 1'000'000'000) {
    whole += 1;
    nanos = 0;
  }
  duration.set_seconds(static_cast<std::int64_t>(whole));
  duration.set_nanos(nanos);
  return duration;
}

std::optional<google::protobuf::Duration> optional_wait(const std::string& text) {
  if (text.empty()) return std::nullopt;
  return parse_seconds(text, /*allow_zero=*/true);
}

std::uint32_t parse_positive_count(std::string_view text, std::uint32_t max) {
  std::uint32_t count = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), count);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || count == 0 ||
      count > max) {
    throw BadValue("must be a whole number from 1 to " + std::to_string(max) + ", got " +
                   quoted(text));
  }
  return count;
}

std::pair<std::string, std::string> parse_key_value(std::string_view text) {
  auto equals = text.find('=');
  if (equals == std::string_view::npos || equals == 0) {
    throw BadValue("expected KEY=VALUE, got " + quoted(text));
  }
  return {std::string(text.substr(0, equals)), std::string(text.substr(equals + 1))};
}

google::protobuf::Value parse_arg_value(std::string_view text) {
  google::protobuf::Value value;
  std::string ignored;
  if (!parse_json(text, &value, &ignored)) value.set_string_value(std::string(text));
  return value;
}

google::protobuf::Value parse_json_argument(std::string_view text) {
  google::protobuf::Value value;
  std::string reason;
  if (!parse_json(text, &value, &reason)) {
    throw BadValue("not valid JSON (" + reason + "): " + quoted(text));
  }
  return value;
}

v1::TaskState parse_state(std::string_view text) {
  if (auto state = parse_state_name(text)) return *state;
  throw BadValue("unknown state " + quoted(text) + "; expected one of " + std::string(kStateNames));
}

v1::ReturnWhen parse_return_when_argument(std::string_view text) {
  if (auto when = parse_return_when(text)) return *when;
  throw BadValue("expected first-completed, first-exception or all-completed, got " + quoted(text));
}

google::protobuf::Value build_task_args(const std::optional<std::string>& args_json,
                                        const std::vector<std::string>& arg_pairs) {
  google::protobuf::Value args;
  try {
    if (args_json) args = parse_json_argument(*args_json);
  } catch (const BadValue& e) {
    throw usage_error("--args", e.what());
  }
  if (arg_pairs.empty()) return args;
  if (args.kind_case() != google::protobuf::Value::kStructValue) {
    if (args_json) throw usage_error("--args", "must be a JSON object to combine with --arg");
    args.mutable_struct_value();
  }
  auto& fields = *args.mutable_struct_value()->mutable_fields();
  for (const auto& pair : arg_pairs) {
    try {
      auto [key, text] = parse_key_value(pair);
      fields[key] = parse_arg_value(text);
    } catch (const BadValue& e) {
      throw usage_error("--arg", e.what());
    }
  }
  return args;
}

std::vector<std::pair<std::string, std::string>> build_labels(
    const std::vector<std::string>& label_pairs) {
  std::vector<std::pair<std::string, std::string>> labels;
  for (const auto& pair : label_pairs) {
    try {
      labels.push_back(parse_key_value(pair));
    } catch (const BadValue& e) {
      throw usage_error("--label", e.what());
    }
  }
  return labels;
}

std::string format_seconds(const google::protobuf::Duration& duration) {
  double seconds = static_cast<double>(duration.seconds()) + duration.nanos() / 1e9;
  char text[64];
  std::snprintf(text, sizeof text, "%.9gs", seconds);
  return text;
}

}  // namespace taskwire::cli
