#pragma once

#include <exception>
#include <functional>
#include <type_traits>
#include <utility>

#include "core/detail/task_state.h"

namespace taskwire {

// A handle to a scheduled task, as asyncio's Task: returned by
// EventLoop::create_task, copyable (all copies refer to one task), awaitable
// by any number of tasks at once. Awaiting gives the task's value (a copy;
// awaiting an rvalue handle moves it out), rethrows its exception, or throws
// CancelledError. Cancelling the awaiting task cancels the awaited one, as in
// asyncio; wrap the handle in shield() to prevent that.
//
// Handles must not outlive the EventLoop their task runs on.
template <typename T>
class TaskHandle {
 public:
  using value_type = T;

  TaskHandle() noexcept = default;
  explicit TaskHandle(detail::TaskStateResult<T>* state) noexcept : state_(state) {
    if (state_) state_->add_ref();
  }
  TaskHandle(const TaskHandle& other) noexcept : TaskHandle(other.state_) {}
  TaskHandle(TaskHandle&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  TaskHandle& operator=(TaskHandle other) noexcept {
    std::swap(state_, other.state_);
    return *this;
  }
  ~TaskHandle() {
    if (state_) state_->release();
  }

  bool valid() const noexcept { return state_ != nullptr; }
  bool done() const noexcept { return state_->done(); }
  bool cancelled() const noexcept { return state_->cancelled(); }
  const std::string& name() const noexcept { return state_->name(); }
  // Requests cancellation: the task sees CancelledError at its current (or
  // next) suspension point. False if it has already finished.
  bool cancel() const { return state_->cancel(); }

  // The value of a task that succeeded. Throws its exception if it failed,
  // CancelledError if it was cancelled, InvalidStateError if not yet done.
  decltype(auto) result() const {
    state_->rethrow_if_unsuccessful();
    if constexpr (!std::is_void_v<T>) return static_cast<const T&>(state_->value());
  }
  // The task's exception, null if it succeeded. Throws CancelledError if it
  // was cancelled, InvalidStateError if not yet done.
  std::exception_ptr exception() const { return state_->exception(); }

  // Calls `callback` with this handle once the task finishes, through the
  // loop's ready queue, in registration order. If the task is already done
  // the callback is scheduled at once.
  void add_done_callback(std::function<void(const TaskHandle&)> callback) const;

  template <bool kMove>
  class Awaiter;
  Awaiter<false> operator co_await() const& noexcept { return Awaiter<false>(state_); }
  Awaiter<true> operator co_await() && noexcept { return Awaiter<true>(state_); }

  detail::TaskStateResult<T>* state() const noexcept { return state_; }
  friend bool operator==(const TaskHandle& a, const TaskHandle& b) noexcept {
    return a.state_ == b.state_;
  }

 private:
  detail::TaskStateResult<T>* state_ = nullptr;
};

template <typename T>
template <bool kMove>
class TaskHandle<T>::Awaiter final : private detail::CompletionWaiter, private detail::Suspension {
 public:
  explicit Awaiter(detail::TaskStateResult<T>* target) noexcept : target_(target) {}

  bool await_ready() const noexcept { return target_->done(); }
  void await_suspend(std::coroutine_handle<> resume_point) {
    waiting_ = &detail::require_current_task();
    target_->add_waiter(this);
    waiting_->suspend(resume_point, this);
  }
  T await_resume() {
    if (waiting_ && waiting_->take_cancel_request()) throw CancelledError();
    target_->rethrow_if_unsuccessful();
    if constexpr (kMove && !std::is_void_v<T>) {
      return std::move(target_->value());
    } else if constexpr (!std::is_void_v<T>) {
      return target_->value();
    }
  }

 private:
  void on_task_done(detail::TaskStateBase&) override { waiting_->wake(); }
  void cancel() override { target_->cancel(); }

  detail::TaskStateResult<T>* target_;
  detail::TaskStateBase* waiting_ = nullptr;
};

namespace detail {

// A done-callback registered on a task: owns itself until it has run.
template <typename T>
class DoneCallback final : public CompletionWaiter {
 public:
  using Callback = std::function<void(const TaskHandle<T>&)>;
  explicit DoneCallback(Callback callback) : callback_(std::move(callback)) {}

  void on_task_done(TaskStateBase& task) override;
  void on_task_abandoned() override { delete this; }

 private:
  Callback callback_;
};

// Schedules `fn` on `loop`'s ready queue (EventLoop::call_soon without the
// dependency on event_loop.h).
void schedule_callback(EventLoop& loop, std::function<void()> fn);

template <typename T>
void DoneCallback<T>::on_task_done(TaskStateBase& task) {
  schedule_callback(task.loop(), [callback = std::move(callback_),
                                  handle = TaskHandle<T>(static_cast<TaskStateResult<T>*>(&task))] {
    callback(handle);
  });
  delete this;
}

}  // namespace detail

template <typename T>
void TaskHandle<T>::add_done_callback(std::function<void(const TaskHandle&)> callback) const {
  if (state_->done()) {
    detail::schedule_callback(state_->loop(),
                              [callback = std::move(callback), self = *this] { callback(self); });
    return;
  }
  state_->add_waiter(new detail::DoneCallback<T>(std::move(callback)));
}

}  // namespace taskwire
