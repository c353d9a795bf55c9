#pragma once

#include <coroutine>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "core/clock.h"
#include "core/detail/awaitable_traits.h"
#include "core/detail/child_watch.h"
#include "core/detail/task_state.h"
#include "core/detail/timer_heap.h"
#include "core/event_loop.h"
#include "core/task_handle.h"

// as_completed: asyncio.as_completed. Yields the tasks in the order they
// finish (tasks already finished come first, in the order given):
//
//   auto pending = as_completed(std::move(tasks));
//   while (!pending.empty()) {
//     TaskHandle<int> first = co_await pending.next();
//     int value = first.result();  // Or co_await first: it is done.
//   }
//
// With a timeout, next() raises TimeoutError once that much time has passed
// since as_completed was called; the tasks are not cancelled. Cancelling the
// task waiting in next() raises CancelledError there and leaves the tasks
// alone. An AsCompleted must be used on the loop that runs its tasks.
namespace taskwire {

template <typename T>
class AsCompleted {
 public:
  AsCompleted(std::vector<TaskHandle<T>> tasks, std::optional<Duration> timeout)
      : state_(std::make_unique<State>(std::move(tasks), timeout)) {}

  // Whether every task has been yielded.
  bool empty() const noexcept { return state_->yielded == state_->tasks.size(); }
  std::size_t remaining() const noexcept { return state_->tasks.size() - state_->yielded; }

  class NextAwaiter;
  // Awaits the next task to finish. Calling next() when empty() is an
  // InvalidStateError.
  NextAwaiter next() { return NextAwaiter(*state_); }

 private:
  struct State final : detail::ChildObserver {
    State(std::vector<TaskHandle<T>> all, std::optional<Duration> timeout) : tasks(std::move(all)) {
      std::vector<detail::TaskStateBase*> states;
      for (std::size_t i = 0; i < tasks.size(); ++i) {
        states.push_back(tasks[i].state());
        if (tasks[i].done()) finished.push_back(i);
      }
      watch.emplace(states, *this);
      if (timeout) {
        EventLoop* loop = EventLoop::current();
        if (loop == nullptr)
          throw InvalidStateError("as_completed with a timeout needs a running EventLoop");
        deadline = loop->now() + *timeout;
      }
    }
    void on_child_done(std::size_t index) override {
      finished.push_back(index);
      if (waiter != nullptr) waiter->on_ready();
    }

    std::vector<TaskHandle<T>> tasks;
    std::deque<std::size_t> finished;
    std::optional<detail::ChildWatchSet> watch;
    std::optional<TimePoint> deadline;
    std::size_t yielded = 0;
    NextAwaiter* waiter = nullptr;
  };

  std::unique_ptr<State> state_;
};

template <typename T>
class AsCompleted<T>::NextAwaiter final : private detail::Suspension, private detail::TimerNode {
 public:
  explicit NextAwaiter(State& state) : state_(state) {}
  ~NextAwaiter() {
    if (state_.waiter == this) state_.waiter = nullptr;
    if (armed()) waiting_->loop().timers().cancel(this);
  }

  bool await_ready() const {
    if (state_.yielded == state_.tasks.size())
      throw InvalidStateError("as_completed: no tasks left");
    return !state_.finished.empty();
  }
  void await_suspend(std::coroutine_handle<> resume_point) {
    waiting_ = &detail::require_current_task();
    state_.waiter = this;
    if (state_.deadline) waiting_->loop().timers().arm(this, *state_.deadline);
    waiting_->suspend(resume_point, this);
  }
  TaskHandle<T> await_resume() {
    if (cancelled_ || (waiting_ != nullptr && waiting_->take_cancel_request()))
      throw CancelledError();
    if (state_.finished.empty()) throw TimeoutError("as_completed: timed out");
    std::size_t index = state_.finished.front();
    state_.finished.pop_front();
    ++state_.yielded;
    return state_.tasks[index];
  }

 private:
  friend struct State;
  void on_ready() { resume(); }
  void fire() override { resume(); }
  void cancel() override {
    cancelled_ = true;
    resume();
  }
  void resume() {
    state_.waiter = nullptr;
    if (armed()) waiting_->loop().timers().cancel(this);
    waiting_->wake();
  }

  State& state_;
  detail::TaskStateBase* waiting_ = nullptr;
  bool cancelled_ = false;
};

template <typename T>
AsCompleted<T> as_completed(std::vector<TaskHandle<T>> tasks,
                            std::optional<Duration> timeout = std::nullopt) {
  return AsCompleted<T>(std::move(tasks), timeout);
}

}  // namespace taskwire
