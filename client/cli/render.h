#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <ostream>
#include <string>
#include <vector>

#include "taskwire/v1/tasks.pb.h"

namespace taskwire::cli {

// Output for people. Machine-readable output is to_json() (json.h), one
// object per line.

// What the task came to: its result as JSON when it succeeded, "Type:
// message" when it failed or was cancelled, empty while unfinished.
std::string outcome_text(const v1::Task& task);

// The task's result as JSON; "null" when it has none.
std::string result_json(const v1::Task& task);

// UTC, to the millisecond: "2024-05-01T12:00:01.123Z".
std::string format_time(const google::protobuf::Timestamp& time);

// "key: value" lines, values aligned, unset fields left out (get, cancel).
void print_task_block(std::ostream& out, const v1::Task& task);

// ID, KIND, STATE, NAME, CREATED: one row per task (ls).
void print_task_list(std::ostream& out, const std::vector<v1::Task>& tasks);

// One row per id in the given order, with the outcome of the finished ones
// (gather, wait). tasks[i] is null for an id that is not finished.
void print_outcome_table(std::ostream& out, const std::vector<std::string>& ids,
                         const std::vector<const v1::Task*>& tasks);

// One watch event on one line: time, id, kind, state change, and the
// outcome once final.
std::string event_line(const v1::TaskEvent& event);

}  // namespace taskwire::cli
