// Unit tests of the CLI's pure parts: argument values, names, rendering and
// the exit-code mapping. The end-to-end behaviour is cli_test.sh's.
#include <gtest/gtest.h>

#include <sstream>

#include "client/cli/arg_parsing.h"
#include "client/cli/cli_error.h"
#include "client/cli/exit_code.h"
#include "client/cli/json.h"
#include "client/cli/render.h"
#include "client/cli/table.h"
#include "client/cli/task_state.h"

namespace taskwire::cli {
namespace {

std::string what_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ParseSeconds, AcceptsDecimalSeconds) {
  auto d = parse_seconds("1.25", true);
  EXPECT_EQ(d.seconds(), 1);
  EXPECT_EQ(d.nanos(), 250'000'000);
  EXPECT_EQ(parse_seconds("0", true).seconds(), 0);
  EXPECT_EQ(parse_seconds("31536000", false).seconds(), 31536000);
}

TEST(ParseSeconds, RejectsWithTheRuleAndTheInput) {
  EXPECT_EQ(what_of([] { parse_seconds("abc", true); }),
            "must be a non-negative number of seconds, got 'abc'");
  EXPECT_EQ(what_of([] { parse_seconds("0", false); }),
            "must be a positive number of seconds, got '0'");
  for (const char* bad : {"", "-1", "nan", "inf", "1s", " 1", "1e400"}) {
    EXPECT_THROW(parse_seconds(bad, true), BadValue) << bad;
  }
  EXPECT_EQ(what_of([] { parse_seconds("31536001", true); }),
            "must be at most 31536000 seconds (one year), got '31536001'");
}

TEST(ParseKeyValue, SplitsAtTheFirstEquals) {
  EXPECT_EQ(parse_key_value("a=b=c"), (std::pair<std::string, std::string>{"a", "b=c"}));
  EXPECT_EQ(parse_key_value("a="), (std::pair<std::string, std::string>{"a", ""}));
  EXPECT_EQ(what_of([] { parse_key_value("seconds"); }), "expected KEY=VALUE, got 'seconds'");
  EXPECT_THROW(parse_key_value("=1"), BadValue);
}

TEST(ParseArgValue, IsJsonWhenValidElseAString) {
  EXPECT_EQ(to_json(parse_arg_value("2")), "2");
  EXPECT_EQ(to_json(parse_arg_value("hi")), "\"hi\"");
  EXPECT_EQ(to_json(parse_arg_value("\"2\"")), "\"2\"");
  EXPECT_EQ(to_json(parse_arg_value("true")), "true");
  EXPECT_EQ(to_json(parse_arg_value("[1,\"a\"]")), "[1,\"a\"]");
  EXPECT_EQ(to_json(parse_arg_value("")), "\"\"");
  EXPECT_EQ(to_json(parse_arg_value("{oops")), "\"{oops\"");
}

TEST(BuildTaskArgs, LaysPairsOverTheJsonObject) {
  auto args = build_task_args(std::string(R"({"a": 1, "b": 2})"), {"b=x", "c=[3]"});
  // Struct is a map: its JSON has no fixed key order, so compare fields.
  const auto& fields = args.struct_value().fields();
  ASSERT_EQ(fields.size(), 3u);
  EXPECT_EQ(to_json(fields.at("a")), "1");
  EXPECT_EQ(to_json(fields.at("b")), "\"x\"");
  EXPECT_EQ(to_json(fields.at("c")), "[3]");
  EXPECT_EQ(to_json(build_task_args(std::nullopt, {"seconds=2"})), R"({"seconds":2})");
  EXPECT_EQ(build_task_args(std::nullopt, {}).kind_case(), google::protobuf::Value::KIND_NOT_SET);
}

TEST(BuildTaskArgs, NamesTheArgumentAtFault) {
  try {
    build_task_args(std::string("[1]"), {"a=1"});
    FAIL();
  } catch (const CliError& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_EQ(std::string(e.what()), "--args: must be a JSON object to combine with --arg");
  }
  EXPECT_EQ(what_of([] { build_task_args(std::nullopt, {"nope"}); }),
            "--arg: expected KEY=VALUE, got 'nope'");
  EXPECT_EQ(
      what_of([] { build_task_args(std::string("{x"), {}); }).rfind("--args: not valid JSON", 0),
      0u);
}

TEST(TaskState, ParsesNamesInAnySpelling) {
  EXPECT_EQ(parse_state_name("pending"), v1::TASK_STATE_PENDING);
  EXPECT_EQ(parse_state_name("FAILED"), v1::TASK_STATE_FAILED);
  EXPECT_EQ(parse_state_name("canceled"), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(parse_state_name("TASK_STATE_RUNNING"), v1::TASK_STATE_RUNNING);
  EXPECT_EQ(parse_state_name("sleeping"), std::nullopt);
  EXPECT_EQ(parse_return_when("first-completed"), v1::RETURN_WHEN_FIRST_COMPLETED);
  EXPECT_EQ(parse_return_when("FIRST_EXCEPTION"), v1::RETURN_WHEN_FIRST_EXCEPTION);
  EXPECT_EQ(parse_return_when("soon"), std::nullopt);
}

TEST(Table, AlignsColumnsWithoutTrailingSpaces) {
  Table table({"ID", "STATE", "RESULT"});
  table.add_row({"a", "succeeded", "1"});
  table.add_row({"bbbb", "", ""});
  std::ostringstream out;
  table.print(out);
  EXPECT_EQ(out.str(),
            "ID    STATE      RESULT\n"
            "a     succeeded  1\n"
            "bbbb\n");
}

TEST(Render, OutcomeText) {
  v1::Task task;
  task.set_state(v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(outcome_text(task), "null");
  task.mutable_result()->set_number_value(2.5);
  EXPECT_EQ(outcome_text(task), "2.5");
  task.set_state(v1::TASK_STATE_FAILED);
  task.mutable_error()->set_type("ValueError");
  task.mutable_error()->set_message("bad\nthing");
  EXPECT_EQ(outcome_text(task), "ValueError: bad thing");
  task.set_state(v1::TASK_STATE_RUNNING);
  EXPECT_EQ(outcome_text(task), "");
}

TEST(Render, EventLine) {
  v1::TaskEvent event;
  auto* task = event.mutable_task();
  task->set_id("01ARZ3NDEKTSV4RRFFQ69G5FAV");
  task->set_kind("echo");
  task->set_state(v1::TASK_STATE_SUCCEEDED);
  task->mutable_result()->set_string_value("w");
  task->mutable_finish_time()->set_seconds(0);
  task->mutable_finish_time()->set_nanos(5'000'000);
  event.set_previous_state(v1::TASK_STATE_RUNNING);
  EXPECT_EQ(event_line(event),
            "1970-01-01T00:00:00.005Z  01ARZ3NDEKTSV4RRFFQ69G5FAV  echo  running -> succeeded  "
            "\"w\"");
}

TEST(ExitCodes, MapGrpcStatuses) {
  EXPECT_EQ(exit_code_for(grpc::StatusCode::INVALID_ARGUMENT), ExitCode::kUsage);
  EXPECT_EQ(exit_code_for(grpc::StatusCode::NOT_FOUND), ExitCode::kUsage);
  EXPECT_EQ(exit_code_for(grpc::StatusCode::UNAVAILABLE), ExitCode::kUnreachable);
  EXPECT_EQ(exit_code_for(grpc::StatusCode::DEADLINE_EXCEEDED), ExitCode::kTimeout);
  EXPECT_EQ(exit_code_for(grpc::StatusCode::RESOURCE_EXHAUSTED), ExitCode::kServerError);
  EXPECT_EQ(exit_code_for(grpc::StatusCode::INTERNAL), ExitCode::kServerError);
}

TEST(StatusError, SaysWhichServerCannotBeReached) {
  CliError error =
      status_error(grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection\nrefused"), "h:1");
  EXPECT_EQ(error.code(), ExitCode::kUnreachable);
  EXPECT_EQ(std::string(error.what()), "cannot reach the server at h:1 (connection refused)");
}

}  // namespace
}  // namespace taskwire::cli
