#pragma once

#include <cstdint>
#include <functional>

#include "core/detail/ready_queue.h"
#include "core/detail/timer_heap.h"

namespace taskwire {
class EventLoop;
}

namespace taskwire::detail {

// A callback waiting in the ready queue or the timer heap. Referenced by its
// handles and by the queue or heap that holds it.
class CallbackEntry final : public Runnable, public TimerNode {
 public:
  CallbackEntry(EventLoop& loop, std::function<void()> fn) : loop_(&loop), fn_(std::move(fn)) {}

  void add_ref() noexcept { ++refs_; }
  void release() noexcept {
    if (--refs_ == 0) delete this;
  }

  void cancel();
  bool cancelled() const noexcept { return cancelled_; }

  void run() override;
  void fire() override;
  void discard() noexcept override { release(); }

 private:
  ~CallbackEntry() = default;

  EventLoop* loop_;
  std::function<void()> fn_;
  std::uint32_t refs_ = 1;
  bool cancelled_ = false;
  bool ran_ = false;
};

}  // namespace taskwire::detail
