#pragma once

#include <chrono>

#include "core/clock.h"
#include "core/event_loop.h"

namespace taskwire::testing {

// A loop on virtual time: sleeps complete at once in real time, and
// elapsed() says exactly how much loop time has passed.
class VirtualLoop {
 public:
  EventLoop& loop() { return loop_; }
  VirtualClock& clock() { return clock_; }
  Duration elapsed() const { return clock_.now().time_since_epoch(); }

  template <typename T>
  T run(Task<T> main) {
    return loop_.run(std::move(main));
  }

 private:
  VirtualClock clock_;
  EventLoop loop_{clock_};
};

inline EventLoop& loop() { return *EventLoop::current(); }

}  // namespace taskwire::testing
