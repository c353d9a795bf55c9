#pragma once

#include <cstddef>
#include <stdexcept>

#include "core/detail/wait_list.h"
#include "core/task.h"

namespace taskwire {

// asyncio.Semaphore: acquire() waits while no permits are left; release()
// gives one back. Waiters are served first come, first served: a newcomer
// never overtakes a task already waiting. Loop-thread only.
class Semaphore {
 public:
  explicit Semaphore(std::size_t permits)
      : available_(permits),
        waiters_([](void* self) { static_cast<Semaphore*>(self)->release(); }, this) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  std::size_t available() const noexcept { return available_; }
  bool locked() const noexcept { return available_ == 0 || !waiters_.empty(); }

  // Takes a permit without waiting; false if that would overtake a waiter
  // or none is left.
  bool try_acquire() noexcept {
    if (locked()) return false;
    --available_;
    return true;
  }

  Task<void> acquire() {
    if (try_acquire()) co_return;
    // release() hands its permit straight to the first waiter, so a woken
    // waiter owns a permit without touching the count.
    co_await waiters_.wait();
  }

  void release() {
    if (!waiters_.notify_one()) ++available_;
  }

 private:
  std::size_t available_;
  detail::WaitList waiters_;
};

}  // namespace taskwire
