#pragma once

#include <coroutine>
#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/detail/task_state.h"
#include "core/errors.h"
#include "core/event_loop.h"
#include "core/task.h"
#include "core/task_handle.h"

// TaskGroup: asyncio.TaskGroup, as a scope rather than `async with`:
//
//   co_await with_task_group([&](TaskGroup& group) -> Task<void> {
//     group.create_task(fetch(a));
//     group.create_task(fetch(b));
//     co_return;
//   });
//
// with_task_group runs the body, then waits for every task started in the
// group. The first task to fail (with anything but CancelledError) cancels
// every other task in the group and, if the body is still running, the body
// too; once all have finished, with_task_group raises an ExceptionGroup
// holding every failure (the body's own exception first, if it failed).
// Cancelling the task that runs with_task_group cancels the whole group and
// raises CancelledError once it has wound down. Tasks that are cancelled
// are not failures.
namespace taskwire {

class TaskGroup {
 public:
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  ~TaskGroup();

  // Starts `coro` as a task of this group. Raises InvalidStateError once the
  // group is shutting down (a task failed) or has finished.
  template <typename T>
  TaskHandle<T> create_task(Task<T> coro, std::string name = {}) {
    check_accepting();
    TaskHandle<T> handle = loop_->create_task(std::move(coro), std::move(name));
    adopt(handle.state());
    return handle;
  }

  bool failed() const noexcept { return !errors_.empty(); }
  std::size_t size() const noexcept { return members_.size(); }

 private:
  template <typename F>
  friend Task<void> with_task_group(F body);
  class Member;
  class JoinAwaiter;

  TaskGroup();
  void check_accepting() const;
  void adopt(detail::TaskStateBase* task);
  void on_member_done(detail::TaskStateBase& task);
  void cancel_members();
  // Runs after the body: waits for every member, then raises what is due.
  Task<void> join(std::exception_ptr body_error);
  bool cancelled_parent() const noexcept { return cancelled_parent_; }

  EventLoop* loop_;
  detail::TaskStateBase* parent_;
  std::vector<std::unique_ptr<Member>> members_;
  std::vector<std::exception_ptr> errors_;
  std::size_t running_ = 0;
  JoinAwaiter* joiner_ = nullptr;
  bool joining_ = false;
  bool finished_ = false;
  bool cancelled_parent_ = false;
};

template <typename F>
Task<void> with_task_group(F body) {
  static_assert(std::is_invocable_r_v<Task<void>, F&, TaskGroup&>,
                "the body must be callable as Task<void>(TaskGroup&)");
  TaskGroup group;
  std::exception_ptr body_error;
  try {
    co_await body(group);
  } catch (const CancelledError&) {
    // Our own cancellation of the body (a member failed) is not an error;
    // anyone else's is passed on once the group has wound down.
    if (!group.cancelled_parent()) body_error = std::current_exception();
  } catch (...) {
    body_error = std::current_exception();
  }
  co_await group.join(std::move(body_error));
}

}  // namespace taskwire
