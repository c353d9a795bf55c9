#pragma once

#include <atomic>
#include <chrono>

namespace taskwire {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

// Where an EventLoop gets its time. Production uses SteadyClock; tests use
// VirtualClock so that timing behaviour is exact and runs in microseconds.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
  // A virtual clock lets an idle loop jump straight to its next timer
  // instead of waiting for real time to pass.
  virtual bool is_virtual() const { return false; }
  virtual void advance_to(TimePoint) {}
};

class SteadyClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
};

// Time that moves only when told to, or when the loop it drives is idle.
// Starts at the clock's epoch (now() == TimePoint{}).
class VirtualClock final : public Clock {
 public:
  TimePoint now() const override {
    return TimePoint(Duration(now_ns_.load(std::memory_order_relaxed)));
  }
  bool is_virtual() const override { return true; }
  void advance_to(TimePoint t) override {
    auto ns = t.time_since_epoch().count();
    if (ns > now_ns_.load(std::memory_order_relaxed)) now_ns_.store(ns, std::memory_order_relaxed);
  }
  void advance(Duration d) { advance_to(now() + d); }

 private:
  std::atomic<Duration::rep> now_ns_{0};
};

// Seconds as a double, the unit asyncio and the wire API speak.
inline double to_seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace taskwire
