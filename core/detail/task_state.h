#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "core/detail/frame_allocator.h"
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

class CompletionLink;

// What a CompletionLink tells when its task finishes: one target may have
// many links (a gather, one per child), and tells them apart by address.
class CompletionTarget {
 public:
  virtual void on_link_done(TaskStateBase& task, CompletionLink& link) = 0;
  // The loop was destroyed with the task unfinished; the task never will.
  virtual void on_link_abandoned(CompletionLink&) {}

 protected:
  ~CompletionTarget() = default;
};

// An entry in a task's list of waiters, told in registration order when the
// task finishes. Lives inside whatever waits; unlinks itself when destroyed.
// 24 bytes, with no vtable of its own: a gather of 100,000 tasks holds
// 100,000 of them.
class CompletionLink : public ListNode {
 public:
  explicit CompletionLink(CompletionTarget* target = nullptr) noexcept : target_(target) {}
  void set_target(CompletionTarget* target) noexcept { target_ = target; }
  CompletionTarget& target() const noexcept { return *target_; }

 private:
  CompletionTarget* target_;
};

// A waiter on one task that is its own target (an awaiter in a frame, a
// done-callback): it overrides on_task_done.
class CompletionWaiter : public CompletionTarget, public CompletionLink {
 public:
  CompletionWaiter() noexcept { set_target(this); }
  CompletionWaiter(const CompletionWaiter&) = delete;
  CompletionWaiter& operator=(const CompletionWaiter&) = delete;

  virtual void on_task_done(TaskStateBase& task) = 0;
  // The loop was destroyed with the task unfinished; the task never will.
  virtual void on_task_abandoned() {}

 protected:
  ~CompletionWaiter() = default;

 private:
  void on_link_done(TaskStateBase& task, CompletionLink&) final { on_task_done(task); }
  void on_link_abandoned(CompletionLink&) final { on_task_abandoned(); }
};

enum class TaskStatus : std::uint8_t { kPending, kSucceeded, kFailed, kCancelled };

// The shared state of a scheduled task: asyncio's Task. It owns the body's
// coroutine frame until the body finishes, then keeps only the outcome;
// handles and the loop (while the task runs) hold references to it.
//
// It is 64 bytes, and every task and future has one (a server holds one per
// pending task, a client one per awaited remote task): what only some
// states need lives elsewhere, a name or a failure out of line, where a
// coroutine is suspended in TaskState.
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

  void add_waiter(CompletionLink* waiter) noexcept { waiters_.push_back(waiter); }

  // Suspension protocol, used by awaitables from await_suspend/await_resume.
  void suspend(std::coroutine_handle<> resume_point, Suspension* suspension);
  void wake();
  // True (once) if the task was asked to cancel after it was last woken.
  bool take_cancel_request() noexcept {
    bool requested = must_cancel_;
    must_cancel_ = false;
    return requested;
  }

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

  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* state, std::size_t size) noexcept {
    deallocate_frame(state, size);
  }

 protected:
  TaskStateBase() noexcept;
  virtual ~TaskStateBase() = default;

  // The body's outcome: its exception, or null once its value is stored.
  void finish(std::exception_ptr error) noexcept;
  // Finishes with a known status (`error` only for kFailed): wakes the
  // waiters and drops the loop's reference.
  void complete(TaskStatus status, std::exception_ptr error) noexcept;
  // Destroys the body's frame if it has not finished.
  virtual void destroy_body() noexcept = 0;
  // The body has finished; its result is in its promise. May destroy the
  // body's frame.
  virtual void on_body_done() noexcept = 0;
  // cancel() on an unfinished task. A coroutine task passes the request to
  // where it is suspended, or keeps it for its next suspension; a future
  // (core/future.h) decides for itself.
  virtual void on_cancel_requested();
  // For a state that has no body (a future): the loop tracks it as a task
  // that never runs.
  void register_without_body(EventLoop& loop);

  // Where a coroutine task's body is suspended, and what to tell if the
  // task is cancelled meanwhile.
  struct Resumption {
    std::coroutine_handle<> point;  // The body's frame until it first runs.
    Suspension* suspension = nullptr;
  };
  // A coroutine task's; null for a future, which never runs and so is never
  // suspended or woken.
  virtual Resumption* resumption() noexcept { return nullptr; }

  // Whether TaskStateResult holds a value: kept here, in a bit beside the
  // others, so that a result costs no flag of its own.
  bool value_stored() const noexcept { return value_stored_; }
  void mark_value_stored() noexcept { value_stored_ = true; }

 private:
  friend class taskwire::EventLoop;
  friend void on_root_body_done(TaskStateBase& root) noexcept;

  // What few tasks have, kept apart so that the others do not pay for it.
  struct Extras {
    std::string name;
    std::exception_ptr exception;  // Of a failed task.
  };
  Extras& extras();

  EventLoop* loop_;
  IntrusiveList<CompletionLink> waiters_;
  std::unique_ptr<Extras> extras_;  // Null until a name or a failure is set.
  std::uint32_t refs_ = 1;          // The loop's, until the task finishes.
  TaskStatus status_ = TaskStatus::kPending;
  bool must_cancel_ : 1 = false;
  bool started_ : 1 = false;
  bool exception_retrieved_ : 1 = false;
  bool value_stored_ : 1 = false;
};

// The running task on this thread, or null outside a task.
TaskStateBase* current_task() noexcept;
// The running task; throws InvalidStateError outside one.
TaskStateBase& require_current_task();

// What a TaskHandle<T> refers to: a task's state with room for its value,
// whether a coroutine (TaskState) or a future (FutureState) produces it.
template <typename T>
class TaskStateResult : public TaskStateBase {
 public:
  // Caller has checked that the task succeeded.
  T& value() noexcept { return value_; }

 protected:
  TaskStateResult() noexcept {}
  ~TaskStateResult() override {
    if (value_stored()) std::destroy_at(&value_);
  }
  // Once at most. A task may store its value and still end cancelled
  // (asked to cancel as it returned), so the status cannot say whether
  // the value is there; value_stored() does.
  void store(T&& value) {
    std::construct_at(&value_, std::move(value));
    mark_value_stored();
  }

 private:
  union {
    T value_;  // Constructed by store().
  };
};

template <>
class TaskStateResult<void> : public TaskStateBase {};

template <typename T>
class TaskState final : public TaskStateResult<T> {
 public:
  using Body = std::coroutine_handle<detail::TaskPromise<T>>;

  explicit TaskState(Body body) noexcept : body_(body) {
    body_.promise().set_root(this);
    resumption_.point = body;
  }
  ~TaskState() override { destroy_body(); }

  Body body() const noexcept { return body_; }

  void on_body_done() noexcept override {
    std::exception_ptr error = body_.promise().exception();
    if constexpr (!std::is_void_v<T>) {
      if (!error) this->store(body_.promise().value());
    }
    destroy_body();  // The outcome is copied out: free the frame now.
    this->finish(std::move(error));
  }

 private:
  void destroy_body() noexcept override {
    if (body_) std::exchange(body_, {}).destroy();
  }
  TaskStateBase::Resumption* resumption() noexcept override { return &resumption_; }

  Body body_;
  TaskStateBase::Resumption resumption_;
};

}  // namespace detail
}  // namespace taskwire
