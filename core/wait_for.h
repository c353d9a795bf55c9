#pragma once

#include <coroutine>
#include <optional>
#include <utility>

#include "core/clock.h"
#include "core/detail/awaitable_traits.h"
#include "core/detail/task_state.h"
#include "core/detail/timer_heap.h"
#include "core/event_loop.h"
#include "core/task.h"
#include "core/task_handle.h"

// wait_for: asyncio.wait_for. Awaits the task (a Task is scheduled at once)
// for at most `timeout`. When the time runs out the task is cancelled, and
// once it has finished cancelling wait_for raises TimeoutError. Should the
// task ignore the cancellation and finish anyway, its own outcome is
// returned, as in asyncio. Cancelling the waiting task cancels the awaited
// one too. No timeout (nullopt) waits as long as it takes.
namespace taskwire {
namespace detail {

class WaitForAwaiter final : private CompletionWaiter, private Suspension, private TimerNode {
 public:
  WaitForAwaiter(TaskStateBase* task, std::optional<Duration> timeout)
      : task_(task), timeout_(timeout) {}
  ~WaitForAwaiter() {
    if (armed()) waiting_->loop().timers().cancel(this);
  }

  bool await_ready() const noexcept { return task_->done(); }
  void await_suspend(std::coroutine_handle<> resume_point) {
    waiting_ = &require_current_task();
    task_->add_waiter(this);
    if (timeout_) {
      if (*timeout_ <= Duration::zero()) {
        fire();
      } else {
        waiting_->loop().timers().arm(this, waiting_->loop().now() + *timeout_);
      }
    }
    waiting_->suspend(resume_point, this);
  }
  void await_resume() {
    if (waiting_ != nullptr && waiting_->take_cancel_request()) throw CancelledError();
    if (timed_out_ && task_->cancelled()) throw TimeoutError("wait_for: timed out");
  }

 private:
  void on_task_done(TaskStateBase&) override {
    if (armed()) waiting_->loop().timers().cancel(this);
    waiting_->wake();
  }
  void fire() override {
    timed_out_ = true;
    task_->cancel();
  }
  void cancel() override {
    if (armed()) waiting_->loop().timers().cancel(this);
    task_->cancel();
  }

  TaskStateBase* task_;
  std::optional<Duration> timeout_;
  TaskStateBase* waiting_ = nullptr;
  bool timed_out_ = false;
};

}  // namespace detail

template <typename T>
Task<T> wait_for(TaskHandle<T> task, std::optional<Duration> timeout) {
  co_await detail::WaitForAwaiter(task.state(), timeout);
  co_return co_await std::move(task);
}

template <typename T>
Task<T> wait_for(Task<T> coro, std::optional<Duration> timeout) {
  return wait_for(detail::ensure_task(std::move(coro)), timeout);
}

}  // namespace taskwire
