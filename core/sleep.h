#pragma once

#include <coroutine>

#include "core/clock.h"
#include "core/detail/task_state.h"
#include "core/detail/timer_heap.h"
#include "core/event_loop.h"

namespace taskwire {

// Awaitable returned by sleep(): suspends the current task until the loop's
// clock has advanced by the duration. Cancelling the task wakes it at once
// with CancelledError. A zero or negative duration still yields to the loop
// for one pass, as asyncio.sleep(0) does.
class [[nodiscard]] SleepAwaiter final : private detail::TimerNode, private detail::Suspension {
 public:
  explicit SleepAwaiter(Duration duration) noexcept : duration_(duration) {}
  SleepAwaiter(SleepAwaiter&& other) noexcept : duration_(other.duration_) {}
  ~SleepAwaiter() {
    if (armed()) task_->loop().timers().cancel(this);
  }

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> resume_point) {
    task_ = &detail::require_current_task();
    EventLoop& loop = task_->loop();
    loop.timers().arm(this, loop.now() + duration_);
    task_->suspend(resume_point, this);
  }
  void await_resume() {
    if (cancelled_ || task_->take_cancel_request()) throw CancelledError();
  }

 private:
  void fire() override { task_->wake(); }
  void cancel() override {
    task_->loop().timers().cancel(this);
    cancelled_ = true;
    task_->wake();
  }

  Duration duration_;
  detail::TaskStateBase* task_ = nullptr;
  bool cancelled_ = false;
};

// asyncio.sleep: `co_await sleep(2s);` inside a task.
inline SleepAwaiter sleep(Duration duration) noexcept { return SleepAwaiter(duration); }

}  // namespace taskwire
