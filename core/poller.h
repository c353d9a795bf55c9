#pragma once

#include "core/clock.h"

namespace taskwire {

// What an EventLoop waits on when it has nothing to run. Without one, an idle
// loop sleeps on a condition variable until a post() or its next timer. A
// program that does I/O can give the loop a poller for that I/O instead (for
// example gRPC's completion queue): the loop thread then runs the I/O's
// callbacks itself, in its passes, and no other thread hands them over.
class Poller {
 public:
  // Passed as a deadline: do not wait at all; wait with no deadline.
  static constexpr TimePoint kNoWait = TimePoint::min();
  static constexpr TimePoint kNoDeadline = TimePoint::max();

  virtual ~Poller() = default;

  // On the loop thread: runs the callbacks of the I/O that is ready. If none
  // is, waits for some until `deadline` (a time on the loop's clock), or
  // until wake() is called, whichever comes first.
  virtual void poll(TimePoint deadline) = 0;

  // From any thread: makes a waiting poll() return soon.
  virtual void wake() = 0;
};

}  // namespace taskwire
