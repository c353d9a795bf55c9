#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

#include "core/clock.h"
#include "core/event_loop.h"
#include "core/sleep.h"

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

// Sleeps, then returns `value`.
inline Task<int> sleep_then(Duration delay, int value) {
  co_await sleep(delay);
  co_return value;
}

// Sleeps, then fails with std::runtime_error(message). (Overloads, not a
// defaulted string: GCC 12 mishandles defaulted class arguments in calls
// made inside coroutines.)
inline Task<int> fail_after(Duration delay, std::string message) {
  co_await sleep(delay);
  throw std::runtime_error(message);
}
inline Task<int> fail_after(Duration delay) { return fail_after(delay, "failed"); }

}  // namespace taskwire::testing
