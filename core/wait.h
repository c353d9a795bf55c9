#pragma once

#include <coroutine>
#include <cstddef>
#include <optional>
#include <vector>

#include "core/clock.h"
#include "core/detail/child_watch.h"
#include "core/detail/task_state.h"
#include "core/detail/timer_heap.h"
#include "core/event_loop.h"
#include "core/task.h"
#include "core/task_handle.h"

// wait: asyncio.wait. Waits for some of the tasks to finish and returns them
// split into done and pending (each in the order given), without raising
// their exceptions and without cancelling anything: not on timeout, and not
// when the waiting task is cancelled (that task sees CancelledError; the
// tasks it waited for keep running).
namespace taskwire {

enum class ReturnWhen {
  kFirstCompleted,  // As soon as any task finishes or is cancelled.
  kFirstException,  // As soon as any task fails (not when cancelled), else all.
  kAllCompleted,    // When every task has finished.
};

struct WaitOptions {
  ReturnWhen return_when = ReturnWhen::kAllCompleted;
  // Return with whatever is done once this much time has passed.
  std::optional<Duration> timeout;
  // If non-zero, return once this many tasks are done (or as return_when
  // says, whichever comes first).
  std::size_t count = 0;
};

template <typename T>
struct WaitResult {
  std::vector<TaskHandle<T>> done;
  std::vector<TaskHandle<T>> pending;
};

namespace detail {

class WaitAwaiter final : private ChildObserver, private Suspension, private TimerNode {
 public:
  WaitAwaiter(std::vector<TaskStateBase*> tasks, WaitOptions options)
      : tasks_(std::move(tasks)), options_(options) {
    std::size_t n = tasks_.size();
    target_ = options_.return_when == ReturnWhen::kFirstCompleted ? 1 : n;
    if (options_.count != 0 && options_.count < target_) target_ = options_.count;
  }
  ~WaitAwaiter() {
    if (armed()) waiting_->loop().timers().cancel(this);
  }

  bool await_ready() {
    for (TaskStateBase* task : tasks_) {
      if (task->done()) note_done(*task);
    }
    return satisfied() || options_.timeout == Duration::zero() ||
           (options_.timeout && *options_.timeout < Duration::zero());
  }
  void await_suspend(std::coroutine_handle<> resume_point) {
    waiting_ = &require_current_task();
    watch_.emplace(tasks_, static_cast<ChildObserver&>(*this));
    if (options_.timeout)
      waiting_->loop().timers().arm(this, waiting_->loop().now() + *options_.timeout);
    waiting_->suspend(resume_point, this);
  }
  void await_resume() {
    if (cancelled_ || (waiting_ != nullptr && waiting_->take_cancel_request()))
      throw CancelledError();
  }

 private:
  void note_done(const TaskStateBase& task) {
    ++done_;
    if (task.status() == TaskStatus::kFailed) any_failed_ = true;
  }
  bool satisfied() const {
    return done_ >= target_ || (options_.return_when == ReturnWhen::kFirstException && any_failed_);
  }
  void on_child_done(std::size_t index) override {
    note_done(*tasks_[index]);
    if (!resumed_ && satisfied()) resume();
  }
  void fire() override {
    if (!resumed_) resume();
  }
  void cancel() override {
    cancelled_ = true;
    resume();
  }
  void resume() {
    resumed_ = true;
    if (armed()) waiting_->loop().timers().cancel(this);
    watch_.reset();
    waiting_->wake();
  }

  std::vector<TaskStateBase*> tasks_;
  WaitOptions options_;
  std::optional<ChildWatchSet> watch_;
  TaskStateBase* waiting_ = nullptr;
  std::size_t target_ = 0;
  std::size_t done_ = 0;
  bool any_failed_ = false;
  bool cancelled_ = false;
  bool resumed_ = false;
};

}  // namespace detail

template <typename T>
Task<WaitResult<T>> wait(std::vector<TaskHandle<T>> tasks, WaitOptions options = {}) {
  std::vector<detail::TaskStateBase*> states;
  states.reserve(tasks.size());
  for (const auto& task : tasks) states.push_back(task.state());
  co_await detail::WaitAwaiter(std::move(states), options);
  WaitResult<T> result;
  for (auto& task : tasks) (task.done() ? result.done : result.pending).push_back(std::move(task));
  co_return result;
}

template <typename T>
Task<WaitResult<T>> wait(std::vector<TaskHandle<T>> tasks, ReturnWhen return_when,
                         std::optional<Duration> timeout = std::nullopt) {
  return wait(std::move(tasks), WaitOptions{return_when, timeout, 0});
}

}  // namespace taskwire
