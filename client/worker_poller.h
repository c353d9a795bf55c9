#pragma once

#include <grpcpp/grpcpp.h>

#include <mutex>

#include "core/poller.h"

namespace taskwire::client {

// What a tag on the worker's completion queue points at: the object that
// continues once gRPC completes the operation, on the loop thread.
class WorkerTag {
 public:
  virtual void on_event(bool ok) = 0;

 protected:
  ~WorkerTag() = default;
};

// A tag that calls a member function of its owner, so that one stream
// object has a tag per kind of operation.
template <typename Owner, void (Owner::*kOnEvent)(bool)>
class MemberTag final : public WorkerTag {
 public:
  explicit MemberTag(Owner* owner) : owner_(owner) {}
  void on_event(bool ok) override { (owner_->*kOnEvent)(ok); }

 private:
  Owner* owner_;
};

// The worker's completion queue, served from its event loop's thread: the
// loop polls the queue in every pass and waits in it when idle, and each
// event's tag (a WorkerTag) runs on the loop thread. A message from the
// server thus reaches its handler with no hand-off between threads, and
// what the worker writes is written from the loop thread.
class WorkerPoller final : public Poller {
 public:
  WorkerPoller() = default;
  WorkerPoller(const WorkerPoller&) = delete;
  WorkerPoller& operator=(const WorkerPoller&) = delete;
  // Shuts the queue down and hands each event left to its tag; the calls
  // on the queue must have been cancelled or be over.
  ~WorkerPoller() override;

  grpc::CompletionQueue& queue() noexcept { return queue_; }

  void poll(TimePoint deadline) override;
  // Puts an alarm that is already due on the queue.
  void wake() override;

 private:
  // At most this many events per pass, so that tasks and timers get their
  // turn under a flood of messages.
  static constexpr int kMaxEventsPerPoll = 256;
  // A look at the queue costs a system call even when it is empty: while
  // the loop has work, it looks at most this often.
  static constexpr Duration kBusyPollInterval = std::chrono::microseconds(50);

  grpc::CompletionQueue queue_;
  std::mutex mutex_;
  bool closed_ = false;  // Guarded by mutex_.
  TimePoint last_poll_{};
};

}  // namespace taskwire::client
