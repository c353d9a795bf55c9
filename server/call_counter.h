#pragma once

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "core/event.h"
#include "core/task.h"

namespace taskwire::server {

// Counts the calls being served, so that a draining server knows when the
// last one has finished, and stops the ones still served once its grace is
// over. Loop thread only.
class CallCounter {
 public:
  using Id = std::uint64_t;

  // A call is being served; `stop` cancels the coroutine serving it.
  Id enter(std::function<void()> stop) {
    ++active_;
    stops_.emplace(next_id_, std::move(stop));
    return next_id_++;
  }
  void leave(Id id) {
    stops_.erase(id);
    if (--active_ == 0) idle_.set();
  }
  std::size_t active() const noexcept { return active_; }

  // The drain grace is over: stops every call being served. From now on
  // stopping() is true, so that a call answers why it was stopped (the
  // server is shutting down) rather than gRPC's own "Cancelling all calls".
  void stop_all() {
    stopping_ = true;
    std::vector<std::function<void()>> stops;
    for (auto& [id, stop] : stops_) stops.push_back(stop);
    for (auto& stop : stops) stop();
  }
  bool stopping() const noexcept { return stopping_; }

  // Completes once no call is being served.
  Task<void> wait_idle() {
    while (active_ > 0) {
      idle_.clear();
      co_await idle_.wait();
    }
  }

 private:
  std::size_t active_ = 0;
  Id next_id_ = 0;
  std::map<Id, std::function<void()>> stops_;
  bool stopping_ = false;
  Event idle_;
};

// The answer of a call stopped by CallCounter::stop_all.
inline grpc::Status stopped_by_shutdown() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "server is shutting down: its drain grace is over");
}

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
