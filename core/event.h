#pragma once

#include "core/detail/wait_list.h"
#include "core/task.h"

namespace taskwire {

// asyncio.Event: wait() suspends until set() is called; once set, wait()
// returns at once until clear(). Loop-thread only.
class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  bool is_set() const noexcept { return set_; }
  void set() {
    set_ = true;
    waiters_.notify_all();
  }
  void clear() noexcept { set_ = false; }

  // As in asyncio, a waiter woken by set() returns even if clear() came
  // before it ran.
  Task<void> wait() {
    if (!set_) co_await waiters_.wait();
  }

 private:
  bool set_ = false;
  // set() wakes everyone, so a cancelled waiter has no wake-up to pass on.
  detail::WaitList waiters_{[](void*) {}, nullptr};
};

}  // namespace taskwire
