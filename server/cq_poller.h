#pragma once

#include <grpcpp/grpcpp.h>

#include <mutex>

#include "core/event.h"
#include "core/poller.h"
#include "server/cq_tag.h"

namespace taskwire::server {

// Serves a gRPC completion queue from the event loop's thread: the loop
// polls the queue in every pass and waits in it when idle, and each event's
// tag (a CqTag) continues on the loop thread. A call then costs no hand-off
// between threads, as in a hand-written completion-queue server.
class CqPoller final : public Poller {
 public:
  explicit CqPoller(grpc::ServerCompletionQueue& queue) : queue_(queue) {}

  void poll(TimePoint deadline) override;
  // Puts an alarm that is already due on the queue.
  void wake() override;

  // Thread-safe: shuts the queue down (after grpc::Server::Shutdown has
  // returned). Wake-ups stop; `drained` is set, on the loop, once the last
  // event has been taken from the queue.
  void shutdown();
  Event drained;

 private:
  // At most this many events per pass, so that tasks and timers get their
  // turn under a flood of calls.
  static constexpr int kMaxEventsPerPoll = 256;
  // A look at the queue costs a system call even when it is empty, and a
  // call takes the loop several passes: while the loop has work, it looks
  // at most this often.
  static constexpr Duration kBusyPollInterval = std::chrono::microseconds(50);

  grpc::ServerCompletionQueue& queue_;
  std::mutex mutex_;
  bool closed_ = false;  // Guarded by mutex_.
  TimePoint last_poll_{};
};

}  // namespace taskwire::server
