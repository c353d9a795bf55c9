#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/detail/intrusive_list.h"
#include "core/detail/ready_queue.h"
#include "core/detail/task_state.h"
#include "core/detail/timer_heap.h"
#include "core/poller.h"
#include "core/task.h"
#include "core/task_handle.h"

namespace taskwire {

namespace detail {
class CallbackEntry;
}

// A scheduled callback (from call_soon, call_later or call_at) that can be
// cancelled until it has run. Copies refer to the same callback.
class CallbackHandle {
 public:
  CallbackHandle() noexcept = default;
  explicit CallbackHandle(detail::CallbackEntry* entry) noexcept;
  CallbackHandle(const CallbackHandle& other) noexcept;
  CallbackHandle(CallbackHandle&& other) noexcept;
  CallbackHandle& operator=(CallbackHandle other) noexcept;
  ~CallbackHandle();

  // Stops the callback from running; does nothing once it has run.
  void cancel();
  bool cancelled() const noexcept;

 private:
  detail::CallbackEntry* entry_ = nullptr;
};

// The event loop: asyncio's loop and asyncio.run in one object. Everything
// it runs runs on the thread that called run(), one step at a time; the one
// door in from other threads is post().
//
// Each pass runs the work that was ready when the pass began (callbacks and
// task steps, in FIFO order) after moving due timers to the front of the line
// in deadline order; an idle loop sleeps until its next timer or a post(),
// or, on a VirtualClock, jumps straight to the next timer.
//
// A loop can be neither copied nor moved. Task handles must not outlive it.
class EventLoop {
 public:
  using ExceptionHandler = std::function<void(const std::string& message, std::exception_ptr)>;

  EventLoop();  // Real time (SteadyClock).
  explicit EventLoop(Clock& clock);
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  ~EventLoop();

  // The loop running on this thread, or null.
  static EventLoop* current() noexcept;

  Clock& clock() const noexcept { return *clock_; }
  TimePoint now() const { return clock_->now(); }

  // asyncio.run: runs `main` as a task until it finishes, then cancels every
  // task still pending and runs the loop until they have all finished,
  // reports failures that nobody retrieved, and returns main's value (or
  // rethrows its exception). The loop can run again afterwards.
  template <typename T>
  T run(Task<T> main);

  // Schedules `coro` to start on the loop's next pass and returns a handle
  // to it. The loop keeps the task alive until it finishes, even if every
  // handle is dropped.
  template <typename T>
  TaskHandle<T> create_task(Task<T> coro);
  // As above, with a name for logs and reports.
  template <typename T>
  TaskHandle<T> create_task(Task<T> coro, std::string name);

  // Runs `fn` on a later pass (FIFO with other ready work).
  CallbackHandle call_soon(std::function<void()> fn);
  // Runs `fn` once `delay` has passed on the loop's clock.
  CallbackHandle call_later(Duration delay, std::function<void()> fn);
  CallbackHandle call_at(TimePoint deadline, std::function<void()> fn);

  // Thread-safe: hands `fn` to the loop from any thread, waking it if it is
  // idle. `fn` runs on the loop thread at the start of a pass.
  void post(std::function<void()> fn);

  // On the loop thread (or before it runs): from now on, each pass polls
  // `poller` (without waiting when there is work to run) and an idle loop
  // waits in it rather than on its condition variable. Null goes back to
  // the condition variable. Real-time loops only.
  void set_poller(Poller* poller);

  // Tasks created and not yet finished.
  std::size_t pending_task_count() const noexcept { return pending_tasks_; }
  std::size_t pending_timer_count() const noexcept { return timers_.size(); }

  // Receives failures of tasks whose exception was never retrieved (the
  // default logs them to stderr).
  void set_exception_handler(ExceptionHandler handler) { exception_handler_ = std::move(handler); }

  // Plumbing for awaitables and tasks; not for application code.
  void schedule(detail::Runnable* runnable) { ready_.push(runnable); }
  detail::TimerHeap& timers() noexcept { return timers_; }
  void report_unretrieved_failure(detail::TaskStateBase& task);
  void on_task_finished() noexcept { --pending_tasks_; }
  void report_callback_failure(std::exception_ptr error) {
    report("Exception in a callback", std::move(error));
  }

 private:
  friend class detail::TaskStateBase;  // Registers futures (core/future.h).

  // Makes this loop EventLoop::current() on this thread for a scope.
  class CurrentLoopScope {
   public:
    explicit CurrentLoopScope(EventLoop& loop);
    ~CurrentLoopScope();
    CurrentLoopScope(const CurrentLoopScope&) = delete;
    CurrentLoopScope& operator=(const CurrentLoopScope&) = delete;

   private:
    EventLoop* previous_;
  };

  void run_until_done(detail::TaskStateBase& task);
  void run_once();
  void wait_for_work();
  void poll_io();
  void run_posted();
  void fire_due_timers();
  void shut_down_tasks(detail::TaskStateBase& main);
  void report(const std::string& message, std::exception_ptr error);
  void register_task(detail::TaskStateBase& task);
  void name_task(detail::TaskStateBase& task, std::string name);

  std::unique_ptr<Clock> owned_clock_;
  Clock* clock_;
  detail::ReadyQueue ready_;
  detail::TimerHeap timers_;
  detail::IntrusiveList<detail::TaskStateBase> tasks_;
  std::size_t pending_tasks_ = 0;
  ExceptionHandler exception_handler_;

  std::mutex post_mutex_;
  std::condition_variable post_cv_;
  std::vector<std::function<void()>> posted_;        // Guarded by post_mutex_.
  std::vector<std::function<void()>> posted_batch_;  // Loop thread only.
  bool idle_ = false;                                // Guarded by post_mutex_.
  Poller* poller_ = nullptr;                         // Guarded by post_mutex_.
  std::atomic<bool> has_posted_{false};
};

template <typename T>
TaskHandle<T> EventLoop::create_task(Task<T> coro) {
  if (!coro.valid()) throw InvalidStateError("create_task: the Task is empty");
  auto* state = new detail::TaskState<T>(coro.release());
  register_task(*state);
  TaskHandle<T> handle(state);
  schedule(state);
  return handle;
}

template <typename T>
TaskHandle<T> EventLoop::create_task(Task<T> coro, std::string name) {
  TaskHandle<T> handle = create_task(std::move(coro));
  if (!name.empty()) name_task(*handle.state(), std::move(name));
  return handle;
}

template <typename T>
T EventLoop::run(Task<T> main) {
  CurrentLoopScope scope(*this);
  TaskHandle<T> handle = create_task(std::move(main), "main");
  run_until_done(*handle.state());
  shut_down_tasks(*handle.state());
  handle.state()->rethrow_if_unsuccessful();
  if constexpr (!std::is_void_v<T>) return std::move(handle.state()->value());
}

}  // namespace taskwire
