// gather and wait: commands about many tasks at once.
#include <chrono>
#include <iostream>
#include <map>
#include <set>

#include "client/cli/arg_parsing.h"
#include "client/cli/commands.h"
#include "client/cli/json.h"
#include "client/cli/outcome.h"
#include "client/cli/progress_bar.h"
#include "client/cli/render.h"
#include "client/cli/task_state.h"

namespace taskwire::cli {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> distinct(const std::vector<std::string>& ids) {
  std::vector<std::string> unique;
  std::set<std::string> seen;
  for (const auto& id : ids) {
    if (seen.insert(id).second) unique.push_back(id);
  }
  return unique;
}

// What is left of a wait limit that started at `start`, never negative.
std::optional<google::protobuf::Duration> remaining(
    const std::optional<google::protobuf::Duration>& limit, Clock::time_point start) {
  if (!limit) return std::nullopt;
  auto total = std::chrono::seconds(limit->seconds()) + std::chrono::nanoseconds(limit->nanos());
  auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(total - (Clock::now() - start));
  if (left.count() < 0) left = left.zero();
  google::protobuf::Duration duration;
  duration.set_seconds(left.count() / 1'000'000'000);
  duration.set_nanos(static_cast<std::int32_t>(left.count() % 1'000'000'000));
  return duration;
}

// Shows a progress bar while the tasks finish, counted from the AsCompleted
// stream, until `enough` says the caller's condition is met (or the limit
// passes). Gather and Wait answer only at the end, so they cannot drive a
// bar themselves; the caller asks them afterwards, and they answer at once.
// Does nothing when there is no terminal to draw on.
void show_progress(TaskClient& client, const std::string& label,
                   const std::vector<std::string>& unique_ids,
                   const std::optional<google::protobuf::Duration>& limit,
                   const std::function<bool(const v1::Task&, std::size_t done)>& enough) {
  if (!want_progress(unique_ids.size())) return;
  ProgressBar bar(label, unique_ids.size());
  v1::AsCompletedRequest request;
  for (const auto& id : unique_ids) request.add_ids(id);
  if (limit) *request.mutable_timeout() = *limit;
  std::size_t done = 0;
  client.as_completed(request, [&](const v1::Task& task) {
    bar.update(++done);
    return !enough(task, done);
  });
}

// " within 2s", or nothing when there was no limit.
std::string within(const std::optional<google::protobuf::Duration>& limit) {
  return limit ? " within " + format_seconds(*limit) : "";
}

bool is_failure(const v1::Task& task) {
  return task.state() == v1::TASK_STATE_FAILED || task.state() == v1::TASK_STATE_CANCELLED;
}

// Finished tasks, each counted once even if its id was given twice.
std::size_t distinct_done(const v1::WaitResponse& response) {
  std::set<std::string> ids;
  for (const auto& task : response.done()) ids.insert(task.id());
  return ids.size();
}

// Whether a Wait's answer met its condition; if not, its timeout passed.
bool wait_satisfied(const v1::WaitRequest& request, const v1::WaitResponse& response) {
  std::size_t done = distinct_done(response);
  if (request.count() > 0 && done >= request.count()) return true;
  switch (request.return_when()) {
    case v1::RETURN_WHEN_FIRST_COMPLETED:
      return done > 0;
    case v1::RETURN_WHEN_FIRST_EXCEPTION:
      for (const auto& task : response.done()) {
        if (task.state() == v1::TASK_STATE_FAILED) return true;
      }
      return response.pending_ids_size() == 0;
    default:
      return response.pending_ids_size() == 0;
  }
}

}  // namespace

ExitCode gather_command(TaskClient& client, bool json, const GatherOptions& options) {
  auto start = Clock::now();
  auto limit = optional_wait(options.timeout);
  std::vector<std::string> unique_ids = distinct(options.ids);
  show_progress(client, "gather", unique_ids, limit, [&](const v1::Task& task, std::size_t) {
    // Without return_exceptions, Gather answers at the first failure.
    return !options.return_exceptions && is_failure(task);
  });

  v1::GatherRequest request;
  for (const auto& id : options.ids) request.add_ids(id);
  request.set_return_exceptions(options.return_exceptions);
  if (auto left = remaining(limit, start)) *request.mutable_wait_timeout() = *left;
  v1::GatherResponse response = client.gather(request);

  if (json) {
    for (const auto& task : response.tasks()) std::cout << to_json(task) << '\n';
  } else {
    std::vector<const v1::Task*> tasks;
    for (const auto& task : response.tasks()) tasks.push_back(&task);
    print_outcome_table(std::cout, options.ids, tasks);
  }
  std::cout.flush();

  if (!response.done()) {
    std::size_t finished = 0;
    for (const auto& task : response.tasks()) finished += is_final(task.state()) ? 1 : 0;
    throw CliError(ExitCode::kTimeout, "gather: " + std::to_string(finished) + " of " +
                                           std::to_string(response.tasks_size()) +
                                           " tasks finished" + within(limit));
  }
  if (!response.first_failure_id().empty()) {
    for (const auto& task : response.tasks()) {
      if (task.id() == response.first_failure_id()) raise_for_outcome(task);
    }
  }
  return ExitCode::kOk;
}

ExitCode wait_command(TaskClient& client, bool json, const WaitOptions& options) {
  auto start = Clock::now();
  auto limit = optional_wait(options.timeout);
  std::vector<std::string> unique_ids = distinct(options.ids);

  v1::WaitRequest request;
  for (const auto& id : options.ids) request.add_ids(id);
  request.set_return_when(parse_return_when_argument(options.return_when));
  if (!options.count.empty()) {
    // Only here is the number of distinct ids, the bound, known.
    try {
      request.set_count(parse_positive_count(options.count, unique_ids.size()));
    } catch (const BadValue& e) {
      throw usage_error("--count", e.what());
    }
  }

  bool exception_seen = false;
  show_progress(client, "wait", unique_ids, limit, [&](const v1::Task& task, std::size_t done) {
    exception_seen = exception_seen || task.state() == v1::TASK_STATE_FAILED;
    if (request.count() > 0 && done >= request.count()) return true;
    switch (request.return_when()) {
      case v1::RETURN_WHEN_FIRST_COMPLETED:
        return true;
      case v1::RETURN_WHEN_FIRST_EXCEPTION:
        return exception_seen;
      default:
        return false;  // The stream ends by itself once all are done.
    }
  });

  if (auto left = remaining(limit, start)) *request.mutable_timeout() = *left;
  v1::WaitResponse response = client.wait(request);

  if (json) {
    // Wait's answer is a split, not a list of tasks: the pending ones are
    // only ids. One object keeps the split.
    std::cout << to_json(response) << '\n';
  } else {
    std::map<std::string, const v1::Task*> done;
    for (const auto& task : response.done()) done[task.id()] = &task;
    std::vector<const v1::Task*> tasks;
    for (const auto& id : options.ids) {
      auto it = done.find(id);
      tasks.push_back(it == done.end() ? nullptr : it->second);
    }
    print_outcome_table(std::cout, options.ids, tasks);
  }
  std::cout.flush();

  if (!wait_satisfied(request, response)) {
    throw CliError(ExitCode::kTimeout, "wait: " + std::to_string(distinct_done(response)) + " of " +
                                           std::to_string(unique_ids.size()) + " tasks finished" +
                                           within(limit) + "; condition not met");
  }
  return ExitCode::kOk;
}

}  // namespace taskwire::cli
