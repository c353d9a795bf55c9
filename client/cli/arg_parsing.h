#pragma once

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/struct.pb.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "taskwire/v1/tasks.pb.h"

namespace taskwire::cli {

// The rule a command-line value broke, without the argument's name: CLI11's
// validators and usage_error() add the name in front ("--timeout: ...").
class BadValue : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Every parser below throws BadValue with a message that quotes the input.

// Seconds as a decimal number ("2", "0.5"), at most a year (the server's
// limit). Zero is allowed only when allow_zero: a wait of zero answers at
// once, but a task's time limit of zero makes no sense.
google::protobuf::Duration parse_seconds(std::string_view text, bool allow_zero);

// A wait limit: none for an empty text (the option was not given), else
// parse_seconds(text, /*allow_zero=*/true).
std::optional<google::protobuf::Duration> optional_wait(const std::string& text);

// A whole number from 1 to max.
std::uint32_t parse_positive_count(std::string_view text, std::uint32_t max);

// "key=value", split at the first '='; the key must not be empty.
std::pair<std::string, std::string> parse_key_value(std::string_view text);

// A --arg's value: JSON if it parses as JSON ("2", "true", "[1]",
// "\"quoted\""), else the text itself as a string ("hi").
google::protobuf::Value parse_arg_value(std::string_view text);

// Any JSON value, for --args.
google::protobuf::Value parse_json_argument(std::string_view text);

// A state name (see task_state.h).
v1::TaskState parse_state(std::string_view text);

// first-completed, first-exception or all-completed.
v1::ReturnWhen parse_return_when_argument(std::string_view text);

// A task's args from --args JSON (if given) and --arg key=value pairs laid
// over it: pairs set (or replace) fields of the --args object. Throws
// CliError naming the argument at fault.
google::protobuf::Value build_task_args(const std::optional<std::string>& args_json,
                                        const std::vector<std::string>& arg_pairs);

// Labels from --label key=value arguments; a repeated key takes the last.
std::vector<std::pair<std::string, std::string>> build_labels(
    const std::vector<std::string>& label_pairs);

// Seconds as people write them back: "2s", "0.25s".
std::string format_seconds(const google::protobuf::Duration& duration);

}  // namespace taskwire::cli
