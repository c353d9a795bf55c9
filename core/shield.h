#pragma once

#include <coroutine>
#include <utility>

#include "core/detail/awaitable_traits.h"
#include "core/detail/task_state.h"
#include "core/task_handle.h"

// shield: asyncio.shield. Awaits a task, but cancelling the awaiting task
// does not cancel the shielded one: the awaiting task sees CancelledError at
// once and the shielded task runs on. (A Task argument is scheduled at once.)
namespace taskwire {

template <typename T>
class [[nodiscard]] ShieldAwaiter final : private detail::CompletionWaiter,
                                          private detail::Suspension {
 public:
  explicit ShieldAwaiter(TaskHandle<T> task) : task_(std::move(task)) {}
  ShieldAwaiter(ShieldAwaiter&& other) noexcept : task_(std::move(other.task_)) {}

  bool await_ready() const noexcept { return task_.done(); }
  void await_suspend(std::coroutine_handle<> resume_point) {
    waiting_ = &detail::require_current_task();
    task_.state()->add_waiter(this);
    waiting_->suspend(resume_point, this);
  }
  T await_resume() {
    if (cancelled_ || (waiting_ != nullptr && waiting_->take_cancel_request()))
      throw CancelledError();
    if constexpr (std::is_void_v<T>) {
      task_.result();
    } else {
      return task_.result();
    }
  }

 private:
  void on_task_done(detail::TaskStateBase&) override { waiting_->wake(); }
  void cancel() override {
    cancelled_ = true;
    unlink();
    waiting_->wake();
  }

  TaskHandle<T> task_;
  detail::TaskStateBase* waiting_ = nullptr;
  bool cancelled_ = false;
};

template <typename T>
ShieldAwaiter<T> shield(TaskHandle<T> task) {
  return ShieldAwaiter<T>(std::move(task));
}

template <typename T>
ShieldAwaiter<T> shield(Task<T> coro) {
  return ShieldAwaiter<T>(detail::ensure_task(std::move(coro)));
}

}  // namespace taskwire
