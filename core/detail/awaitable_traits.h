#pragma once

#include <type_traits>
#include <utility>
#include <variant>

#include "core/errors.h"
#include "core/event_loop.h"
#include "core/task.h"
#include "core/task_handle.h"

namespace taskwire::detail {

// What a combinator collects from a task of T: void becomes std::monostate so
// that results fit in tuples and vectors.
template <typename T>
using StoredValue = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <typename A>
struct HandleOf;
template <typename T>
struct HandleOf<Task<T>> {
  using type = TaskHandle<T>;
};
template <typename T>
struct HandleOf<TaskHandle<T>> {
  using type = TaskHandle<T>;
};

// A Task or a TaskHandle: what the combinators accept.
template <typename A>
concept TaskLike = requires {
  typename HandleOf<std::remove_cvref_t<A>>::type;
};

// Combinators accept tasks (already scheduled) and coroutines, which they
// schedule at once, as asyncio's ensure_future does: the work starts when
// the combinator is called, not when it is awaited.
template <typename T>
TaskHandle<T> ensure_task(TaskHandle<T> handle) {
  return handle;
}
template <typename T>
TaskHandle<T> ensure_task(Task<T> coro) {
  EventLoop* loop = EventLoop::current();
  if (loop == nullptr) throw InvalidStateError("no running EventLoop on this thread");
  return loop->create_task(std::move(coro));
}

template <typename T>
StoredValue<T> stored_value(const TaskHandle<T>& handle) {
  if constexpr (std::is_void_v<T>) {
    handle.result();
    return {};
  } else {
    return handle.result();
  }
}

}  // namespace taskwire::detail
