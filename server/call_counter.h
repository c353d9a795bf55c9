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

}  // namespace taskwire::server
