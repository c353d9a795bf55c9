#pragma once

#include <coroutine>

#include "core/detail/intrusive_list.h"
#include "core/detail/task_state.h"

namespace taskwire::detail {

// A FIFO of suspended tasks, the building block of Event, Semaphore and
// Queue. Each waiter lives in its awaiter (in the waiting coroutine's frame).
// A cancelled waiter leaves the list and wakes with CancelledError. A waiter
// that was woken and then cancelled before it ran passes its wake-up on, so
// that nothing notified is lost.
class WaitList {
 public:
  class Awaiter;
  // What a woken-then-cancelled waiter does with its wake-up; by default it
  // wakes the next waiter. A semaphore returns the permit instead.
  using PassOn = void (*)(void* context);

  WaitList() = default;
  WaitList(PassOn pass_on, void* context) noexcept : pass_on_(pass_on), context_(context) {}
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;

  bool empty() const noexcept { return waiters_.empty(); }
  // Wakes the longest-waiting task; false if none waits.
  bool notify_one();
  void notify_all() {
    while (notify_one()) {
    }
  }
  Awaiter wait() noexcept;

 private:
  class Waiter : public ListNode {
   public:
    TaskStateBase* task = nullptr;
    bool notified = false;
  };
  void pass_on() {
    if (pass_on_ != nullptr) {
      pass_on_(context_);
    } else {
      notify_one();
    }
  }

  IntrusiveList<Waiter> waiters_;
  PassOn pass_on_ = nullptr;
  void* context_ = nullptr;
};

class [[nodiscard]] WaitList::Awaiter final : private Waiter, private Suspension {
 public:
  explicit Awaiter(WaitList& list) noexcept : list_(list) {}

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> resume_point) {
    task = &require_current_task();
    list_.waiters_.push_back(this);
    task->suspend(resume_point, this);
  }
  void await_resume() {
    if (cancelled_) throw CancelledError();
    if (task->take_cancel_request()) {
      if (notified) list_.pass_on();
      throw CancelledError();
    }
  }

 private:
  friend class WaitList;
  void cancel() override {
    unlink();
    cancelled_ = true;
    task->wake();
  }

  WaitList& list_;
  bool cancelled_ = false;
};

inline bool WaitList::notify_one() {
  Waiter* waiter = waiters_.pop_front();
  if (waiter == nullptr) return false;
  waiter->notified = true;
  waiter->task->wake();
  return true;
}

inline WaitList::Awaiter WaitList::wait() noexcept { return Awaiter(*this); }

}  // namespace taskwire::detail
