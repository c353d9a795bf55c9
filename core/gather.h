#pragma once

#include <tuple>
#include <utility>
#include <vector>

#include "core/detail/awaitable_traits.h"
#include "core/detail/gather_awaiter.h"
#include "core/outcome.h"
#include "core/task.h"
#include "core/task_handle.h"

// gather and gather_outcomes: asyncio.gather without and with
// return_exceptions=True.
//
// Each argument is a TaskHandle or a Task; a Task is scheduled at once (when
// gather is called, not when it is awaited), in argument order.
//
// gather: the results come in argument order (a tuple for the variadic form,
// a vector for the vector form; void becomes std::monostate). The first child
// to fail, or to be cancelled, makes gather raise that exception (or
// CancelledError) at once; the other children are not cancelled and keep
// running.
//
// gather_outcomes: waits for every child and returns an Outcome for each, in
// argument order, holding its value or its exception (CancelledError for a
// cancelled child).
//
// Both: cancelling the task that awaits the gather cancels every unfinished
// child; the awaiting task sees CancelledError once they have all finished.
// An empty gather completes at once with no results.
namespace taskwire {
namespace detail {

template <typename... T>
std::vector<TaskStateBase*> states_of(const TaskHandle<T>&... tasks) {
  return {tasks.state()...};
}

template <typename... T>
Task<std::tuple<StoredValue<T>...>> gather_tuple(TaskHandle<T>... tasks) {
  GatherAwaiter<std::vector<TaskStateBase*>> awaiter(states_of(tasks...),
                                                     GatherMode::kStopOnFailure);
  if (TaskStateBase* failed = co_await awaiter) failed->rethrow_if_unsuccessful();
  co_return std::tuple<StoredValue<T>...>(stored_value(tasks)...);
}

template <typename... T>
Task<std::tuple<Outcome<T>...>> gather_outcomes_tuple(TaskHandle<T>... tasks) {
  GatherAwaiter<std::vector<TaskStateBase*>> awaiter(states_of(tasks...), GatherMode::kCollectAll);
  co_await awaiter;
  co_return std::tuple<Outcome<T>...>(Outcome<T>::of(tasks)...);
}

template <typename T>
std::vector<TaskHandle<T>> ensure_tasks(std::vector<Task<T>> coros) {
  std::vector<TaskHandle<T>> tasks;
  tasks.reserve(coros.size());
  for (auto& coro : coros) tasks.push_back(ensure_task(std::move(coro)));
  return tasks;
}

}  // namespace detail

template <typename T>
Task<std::vector<detail::StoredValue<T>>> gather(std::vector<TaskHandle<T>> tasks) {
  detail::GatherAwaiter<const std::vector<TaskHandle<T>>&> awaiter(
      tasks, detail::GatherMode::kStopOnFailure);
  if (detail::TaskStateBase* failed = co_await awaiter) failed->rethrow_if_unsuccessful();
  std::vector<detail::StoredValue<T>> values;
  values.reserve(tasks.size());
  for (const auto& task : tasks) values.push_back(detail::stored_value(task));
  co_return values;
}

template <typename T>
Task<std::vector<detail::StoredValue<T>>> gather(std::vector<Task<T>> coros) {
  return gather(detail::ensure_tasks(std::move(coros)));
}

template <detail::TaskLike... A>
requires(sizeof...(A) > 0) auto gather(A&&... awaitables) {
  // A braced list evaluates left to right, so the tasks start in order.
  std::tuple handles{detail::ensure_task(std::forward<A>(awaitables))...};
  return std::apply([](auto&&... tasks) { return detail::gather_tuple(std::move(tasks)...); },
                    std::move(handles));
}

template <typename T>
Task<std::vector<Outcome<T>>> gather_outcomes(std::vector<TaskHandle<T>> tasks) {
  detail::GatherAwaiter<const std::vector<TaskHandle<T>>&> awaiter(tasks,
                                                                   detail::GatherMode::kCollectAll);
  co_await awaiter;
  std::vector<Outcome<T>> outcomes;
  outcomes.reserve(tasks.size());
  for (const auto& task : tasks) outcomes.push_back(Outcome<T>::of(task));
  co_return outcomes;
}

template <typename T>
Task<std::vector<Outcome<T>>> gather_outcomes(std::vector<Task<T>> coros) {
  return gather_outcomes(detail::ensure_tasks(std::move(coros)));
}

template <detail::TaskLike... A>
requires(sizeof...(A) > 0) auto gather_outcomes(A&&... awaitables) {
  std::tuple handles{detail::ensure_task(std::forward<A>(awaitables))...};
  return std::apply(
      [](auto&&... tasks) { return detail::gather_outcomes_tuple(std::move(tasks)...); },
      std::move(handles));
}

}  // namespace taskwire
