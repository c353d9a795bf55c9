#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "core/detail/intrusive_list.h"
#include "core/detail/ready_queue.h"
#include "core/errors.h"
#include "core/task.h"

namespace taskwire {

class EventLoop;

namespace detail {

class TaskStateBase;

// The point where a task is suspended, told when the task is cancelled.
// It either wakes the task (whose await_resume then throws CancelledError)
// or passes the request on to what the task waits for and keeps waiting,
// as awaiting another task or a gather does.
class Suspension {
 public:
  virtual void cancel() = 0;

 protected:
  ~Suspension() = default;
};

// Told, in registration order, when a task finishes. Lives inside whatever
// waits (an awaiter in a frame, a gather); unlinks itself when destroyed.
class CompletionWaiter : public ListNode {
 public:
  virtual void on_task_done(TaskStateBase& task) = 0;
  // The loop was destroyed with the task unfinished; the task never will.
  virtual void on_task_abandoned() {}

 protected:
  ~CompletionWaiter() = default;
};

enum class TaskStatus : std::uint8_t { kPending, kSucceeded, kFailed, kCancelled };

// The shared state of a scheduled task: asyncio's Task. It is the promise of
// the task's root coroutine frame, so one allocation holds both; handles and
// the loop (while the task runs) hold references to it.
class TaskStateBase : public Runnable, public ListNode {
 public:
  TaskStateBase(const TaskStateBase&) = delete;
  TaskStateBase& operator=(const TaskStateBase&) = delete;

  EventLoop& loop() const noexcept { return *loop_; }
  TaskStatus status() const noexcept { return status_; }
  bool done() const noexcept { return status_ != TaskStatus::kPending; }
  bool cancelled() const noexcept { return status_ == TaskStatus::kCancelled; }
  const std::string& name() const noexcept;

  // Requests cancellation; false if the task has already finished.
  bool cancel();

  // The failure, or null; throws CancelledError for a cancelled task and
  // InvalidStateError for an unfinished one. Counts as retrieving it.
  std::exception_ptr exception();
  // Throws the task's failure (or CancelledError) if it did not succeed.
  void rethrow_if_unsuccessful();

  void add_waiter(CompletionWaiter* waiter) noexcept { waiters_.push_back(waiter); }

  // Suspension protocol, used by awaitables from await_suspend/await_resume.
  void suspend(std::coroutine_handle<> resume_point, Suspension* suspension);
  void wake();
  // True (once) if the task was asked to cancel after it was last woken.
  bool take_cancel_request() noexcept { return std::exchange(must_cancel_, false); }

  void add_ref() noexcept { ++refs_; }
  void release() noexcept;

  // Runs the task's next step. Called only by the loop.
  void run() final;
  // Drops the loop's reference to a task that will never run again.
  void abandon() noexcept;
  // For shutdown: whether an unretrieved failure should be reported.
  bool has_unretrieved_failure() const noexcept {
    return status_ == TaskStatus::kFailed && !exception_retrieved_;
  }
  void mark_failure_reported() noexcept { exception_retrieved_ = true; }

 protected:
  TaskStateBase() noexcept;
  ~TaskStateBase() = default;

  // Called from the root frame's final suspension.
  void finish() noexcept;
  void fail(std::exception_ptr e) noexcept;
  virtual void destroy_frame() noexcept = 0;

  TaskStatus status_ = TaskStatus::kPending;
  bool must_cancel_ = false;

 private:
  friend class taskwire::EventLoop;

  EventLoop* loop_;
  std::coroutine_handle<> resume_point_;
  Suspension* suspension_ = nullptr;
  IntrusiveList<CompletionWaiter> waiters_;
  std::exception_ptr exception_;
  std::unique_ptr<std::string> name_;
  std::uint32_t refs_ = 1;  // The loop's, until the task finishes.
  bool started_ = false;
  bool exception_retrieved_ = false;
};

// The running task on this thread, or null outside a task.
TaskStateBase* current_task() noexcept;
// The running task; throws InvalidStateError outside one.
TaskStateBase& require_current_task();

template <typename T>
class TaskState;

// The root coroutine's return object: just the handle of its frame.
template <typename T>
struct RootFrame {
  using promise_type = TaskState<T>;
  std::coroutine_handle<TaskState<T>> handle;
};

template <typename T>
class TaskStateResult : public TaskStateBase {
 public:
  template <typename U>
  void return_value(U&& value) {
    value_.emplace(std::forward<U>(value));
  }
  // Caller has checked that the task succeeded.
  T& value() noexcept { return *value_; }

 private:
  std::optional<T> value_;
};

template <>
class TaskStateResult<void> : public TaskStateBase {
 public:
  void return_void() noexcept {}
};

template <typename T>
class TaskState final : public TaskStateResult<T> {
 public:
  RootFrame<T> get_return_object() noexcept {
    return {std::coroutine_handle<TaskState>::from_promise(*this)};
  }
  std::suspend_always initial_suspend() const noexcept { return {}; }
  auto final_suspend() noexcept {
    struct Finish {
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<TaskState> frame) const noexcept {
        frame.promise().finish();
      }
      void await_resume() const noexcept {}
    };
    return Finish{};
  }
  void unhandled_exception() noexcept { this->fail(std::current_exception()); }

 private:
  void destroy_frame() noexcept override {
    std::coroutine_handle<TaskState>::from_promise(*this).destroy();
  }
};

// The root coroutine of every scheduled task: runs the body, and its promise
// (TaskState) records the outcome.
template <typename T>
RootFrame<T> make_root(Task<T> body) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(body);
  } else {
    co_return co_await std::move(body);
  }
}

}  // namespace detail
}  // namespace taskwire
