#include "core/event_loop.h"

#include <spdlog/spdlog.h>

#include "core/detail/callback_entry.h"

namespace taskwire {
namespace {

thread_local EventLoop* t_current_loop = nullptr;

void log_to_stderr(const std::string& message, std::exception_ptr error) {
  spdlog::error("{}: {}", message, describe(error));
}

}  // namespace

EventLoop::EventLoop() : owned_clock_(std::make_unique<SteadyClock>()), clock_(owned_clock_.get()) {
  exception_handler_ = log_to_stderr;
}

EventLoop::EventLoop(Clock& clock) : clock_(&clock) { exception_handler_ = log_to_stderr; }

EventLoop::~EventLoop() {
  // Whatever never ran to completion cannot run now. Queued work goes first:
  // abandoning a task may destroy a frame that the queue still points to.
  while (!ready_.empty()) ready_.pop()->discard();
  std::vector<detail::TaskStateBase*> unfinished;
  for (auto* task = tasks_.front(); task != nullptr; task = tasks_.next(task)) {
    if (!task->done()) {
      task->add_ref();
      unfinished.push_back(task);
    }
  }
  for (auto* task : unfinished) task->abandon();
  for (auto* task : unfinished) task->release();
  while (!timers_.empty()) timers_.pop()->discard();
}

EventLoop* EventLoop::current() noexcept { return t_current_loop; }

EventLoop::CurrentLoopScope::CurrentLoopScope(EventLoop& loop)
    : previous_(std::exchange(t_current_loop, &loop)) {}

EventLoop::CurrentLoopScope::~CurrentLoopScope() { t_current_loop = previous_; }

void EventLoop::register_task(detail::TaskStateBase& task) {
  task.loop_ = this;
  tasks_.push_back(&task);
  ++pending_tasks_;
}

void EventLoop::name_task(detail::TaskStateBase& task, std::string name) {
  task.extras().name = std::move(name);
}

CallbackHandle EventLoop::call_soon(std::function<void()> fn) {
  auto* entry = new detail::CallbackEntry(*this, std::move(fn));
  CallbackHandle handle(entry);  // The entry's first reference is the queue's.
  schedule(entry);
  return handle;
}

CallbackHandle EventLoop::call_later(Duration delay, std::function<void()> fn) {
  return call_at(now() + delay, std::move(fn));
}

CallbackHandle EventLoop::call_at(TimePoint deadline, std::function<void()> fn) {
  auto* entry = new detail::CallbackEntry(*this, std::move(fn));
  CallbackHandle handle(entry);  // The entry's first reference is the heap's.
  timers_.arm(entry, deadline);
  return handle;
}

void EventLoop::post(std::function<void()> fn) {
  bool wake;
  {
    std::lock_guard lock(post_mutex_);
    posted_.push_back(std::move(fn));
    has_posted_.store(true, std::memory_order_relaxed);
    wake = idle_;
    if (wake && poller_ != nullptr) {
      // Under the mutex: the loop may be about to take the poller away.
      poller_->wake();
      return;
    }
  }
  if (wake) post_cv_.notify_one();
}

void EventLoop::set_poller(Poller* poller) {
  if (poller != nullptr && clock_->is_virtual())
    throw InvalidStateError("set_poller: a poller needs a real-time loop");
  std::lock_guard lock(post_mutex_);
  poller_ = poller;
}

void EventLoop::run_until_done(detail::TaskStateBase& task) {
  CurrentLoopScope scope(*this);
  while (!task.done()) run_once();
}

void EventLoop::run_once() {
  if (poller_ != nullptr) {
    poll_io();
  } else if (ready_.empty()) {
    wait_for_work();
  }
  if (has_posted_.load(std::memory_order_relaxed)) run_posted();
  if (!timers_.empty()) fire_due_timers();
  // Only what is ready now runs in this pass; what it schedules waits for
  // the next one, so timers and posts are never starved.
  for (std::size_t n = ready_.size(); n > 0; --n) ready_.pop()->run();
}

void EventLoop::wait_for_work() {
  std::unique_lock lock(post_mutex_);
  if (!posted_.empty()) return;
  if (timers_.empty()) {
    idle_ = true;
    post_cv_.wait(lock, [this] { return !posted_.empty(); });
    idle_ = false;
    return;
  }
  TimePoint deadline = timers_.top()->deadline();
  if (clock_->is_virtual()) {
    clock_->advance_to(deadline);
    return;
  }
  if (deadline <= clock_->now()) return;
  idle_ = true;
  post_cv_.wait_until(lock, deadline, [this] { return !posted_.empty(); });
  idle_ = false;
}

void EventLoop::poll_io() {
  TimePoint deadline = Poller::kNoWait;
  if (ready_.empty() && !has_posted_.load(std::memory_order_relaxed)) {
    std::lock_guard lock(post_mutex_);
    if (posted_.empty()) {
      // From here on a post() wakes the poller.
      idle_ = true;
      deadline = timers_.empty() ? Poller::kNoDeadline : timers_.top()->deadline();
    }
  }
  poller_->poll(deadline);
  if (deadline != Poller::kNoWait) {
    std::lock_guard lock(post_mutex_);
    idle_ = false;
  }
}

void EventLoop::run_posted() {
  {
    std::lock_guard lock(post_mutex_);
    posted_batch_.swap(posted_);
    has_posted_.store(false, std::memory_order_relaxed);
  }
  for (auto& fn : posted_batch_) {
    try {
      fn();
    } catch (...) {
      report("Exception in a posted callback", std::current_exception());
    }
  }
  posted_batch_.clear();
}

void EventLoop::fire_due_timers() {
  const TimePoint now = clock_->now();
  while (!timers_.empty() && timers_.top()->deadline() <= now) timers_.pop()->fire();
}

void EventLoop::shut_down_tasks(detail::TaskStateBase& main) {
  // Cleanup code may start new tasks, so repeat until none is left.
  while (pending_tasks_ > 0) {
    std::vector<detail::TaskStateBase*> pending;
    for (auto* task = tasks_.front(); task != nullptr; task = tasks_.next(task)) {
      if (!task->done()) {
        task->add_ref();
        pending.push_back(task);
      }
    }
    for (auto* task : pending) task->cancel();
    for (auto* task : pending) run_until_done(*task);
    for (auto* task : pending) task->release();
  }
  for (auto* task = tasks_.front(); task != nullptr; task = tasks_.next(task)) {
    if (task != &main && task->has_unretrieved_failure()) report_unretrieved_failure(*task);
  }
}

void EventLoop::report_unretrieved_failure(detail::TaskStateBase& task) {
  task.mark_failure_reported();
  std::string name = task.name().empty() ? "unnamed task" : "task '" + task.name() + "'";
  report("Exception of " + name + " was never retrieved", task.extras().exception);
}

void EventLoop::report(const std::string& message, std::exception_ptr error) {
  if (exception_handler_) exception_handler_(message, std::move(error));
}

namespace detail {

void schedule_callback(EventLoop& loop, std::function<void()> fn) { loop.call_soon(std::move(fn)); }

void CallbackEntry::cancel() {
  if (cancelled_ || ran_) return;
  cancelled_ = true;
  fn_ = nullptr;  // Free what the callback captured now, not when it is dequeued.
  if (armed()) {
    loop_->timers().cancel(this);
    release();  // The heap's reference.
  }
}

void CallbackEntry::run() {
  if (!cancelled_) {
    ran_ = true;
    auto fn = std::move(fn_);
    try {
      fn();
    } catch (...) {
      loop_->report_callback_failure(std::current_exception());
    }
  }
  release();  // The queue's reference.
}

void CallbackEntry::fire() { loop_->schedule(this); }

}  // namespace detail

CallbackHandle::CallbackHandle(detail::CallbackEntry* entry) noexcept : entry_(entry) {
  if (entry_) entry_->add_ref();
}
CallbackHandle::CallbackHandle(const CallbackHandle& other) noexcept
    : CallbackHandle(other.entry_) {}
CallbackHandle::CallbackHandle(CallbackHandle&& other) noexcept
    : entry_(std::exchange(other.entry_, nullptr)) {}
CallbackHandle& CallbackHandle::operator=(CallbackHandle other) noexcept {
  std::swap(entry_, other.entry_);
  return *this;
}
CallbackHandle::~CallbackHandle() {
  if (entry_) entry_->release();
}
void CallbackHandle::cancel() {
  if (entry_) entry_->cancel();
}
bool CallbackHandle::cancelled() const noexcept { return entry_ && entry_->cancelled(); }

}  // namespace taskwire
