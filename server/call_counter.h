#pragma once

#include <cstddef>

#include "core/event.h"
#include "core/task.h"

namespace taskwire::server {

// Counts the calls being served, so that a draining server knows when the
// last one has finished. Loop thread only.
class CallCounter {
 public:
  void enter() noexcept { ++active_; }
  void leave() {
    if (--active_ == 0) idle_.set();
  }
  std::size_t active() const noexcept { return active_; }

  // Completes once no call is being served.
  Task<void> wait_idle() {
    while (active_ > 0) {
      idle_.clear();
      co_await idle_.wait();
    }
  }

 private:
  std::size_t active_ = 0;
  Event idle_;
};

// Counts the call objects that have operations on the completion queue
// (calls being served and calls asked for that have not arrived), so that
// the queue is shut down only once none is left to start another
// operation on it. Loop thread only.
class LiveCalls {
 public:
  void created() noexcept { ++live_; }
  void destroyed() {
    if (--live_ == 0) none_.set();
  }
  Task<void> none_left() {
    while (live_ > 0) {
      none_.clear();
      co_await none_.wait();
    }
  }

 private:
  std::size_t live_ = 0;
  Event none_;
};

}  // namespace taskwire::server
