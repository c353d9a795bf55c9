#pragma once

#include <grpcpp/grpcpp.h>

#include <mutex>
#include <vector>

#include "core/event.h"
#include "core/poller.h"
#include "rpc/cq_tag.h"

namespace taskwire::rpc {

// Serves a gRPC completion queue from an event loop's thread: the loop
// polls the queue in every pass and waits in it when idle, and each event's
// tag (a CqTag) continues on the loop thread. A call or a stream message
// then costs no hand-off between threads, as in a hand-written
// completion-queue program.
class CqPoller final : public Poller {
 public:
  explicit CqPoller(grpc::CompletionQueue& queue) : queue_(queue) {}

  void poll(TimePoint deadline) override;
  // Puts an alarm that is already due on the queue.
  void wake() override;

  // Loop thread: calls tag.on_event(true) just before a later look at the
  // queue: the next one that waits (the loop has nothing else to do), or,
  // while the loop stays busy, the one after next; on_event(false) if the
  // queue is shut down first. For an operation better started after what
  // the current pass writes: starting a stream's next Read makes gRPC send
  // a flow-control update (WINDOW_UPDATE) at once, a system call that
  // would otherwise come before the pass's answer. The tag's owner stays
  // alive, and defers it again only once it has fired.
  void defer(CqTag& tag) { deferred_since_last_look_.push_back(&tag); }

  // Thread-safe: shuts the queue down (a server's, after grpc::Server::
  // Shutdown has returned). Wake-ups stop; `drained` is set, on the loop,
  // once the last event has been taken from the queue.
  void shutdown();
  Event drained;

  // For a loop that polls no more: shuts the queue down and hands each
  // event left to its tag, here. The calls on the queue must have been
  // cancelled or be over.
  void shutdown_and_drain();

 private:
  // At most this many events per pass, so that tasks and timers get their
  // turn under a flood of calls.
  static constexpr int kMaxEventsPerPoll = 256;
  // A look at the queue costs a system call even when it is empty, and a
  // call takes the loop several passes: while the loop has work, it looks
  // at most this often.
  static constexpr Duration kBusyPollInterval = std::chrono::microseconds(50);

  grpc::CompletionQueue& queue_;
  std::mutex mutex_;
  bool closed_ = false;  // Guarded by mutex_.
  TimePoint last_poll_{};
  std::vector<CqTag*> deferred_since_last_look_;
  std::vector<CqTag*> deferred_before_last_look_;

  // Fires the deferred tags that are due; true if any fired.
  bool fire_deferred(bool loop_idle);
  void fail_deferred();
};

// A completion queue of one's own (a client's or a worker's), served by a
// CqPoller; destroying it shuts the queue down and drains it.
class OwnedCompletionQueue {
 public:
  OwnedCompletionQueue() = default;
  OwnedCompletionQueue(const OwnedCompletionQueue&) = delete;
  OwnedCompletionQueue& operator=(const OwnedCompletionQueue&) = delete;
  ~OwnedCompletionQueue() { poller_.shutdown_and_drain(); }

  grpc::CompletionQueue& queue() noexcept { return queue_; }
  CqPoller& poller() noexcept { return poller_; }

 private:
  grpc::CompletionQueue queue_;
  CqPoller poller_{queue_};
};

}  // namespace taskwire::rpc
