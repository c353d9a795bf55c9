#include "rpc/cq_poller.h"

#include <grpc/support/time.h>
#include <grpcpp/alarm.h>

#include <chrono>

namespace taskwire::rpc {
namespace {

gpr_timespec to_gpr(TimePoint deadline) {
  if (deadline == Poller::kNoWait) return gpr_inf_past(GPR_CLOCK_MONOTONIC);
  if (deadline == Poller::kNoDeadline) return gpr_inf_future(GPR_CLOCK_MONOTONIC);
  auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return gpr_inf_past(GPR_CLOCK_MONOTONIC);
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                      gpr_time_from_nanos(left.count(), GPR_TIMESPAN));
}

// An alarm that is due at once: its event wakes a waiting poll(). One per
// wake-up, freed by its own event.
class WakeUp final : public CqTag {
 public:
  explicit WakeUp(grpc::CompletionQueue& queue) {
    alarm_.Set(&queue, gpr_inf_past(GPR_CLOCK_MONOTONIC), static_cast<CqTag*>(this));
  }
  void on_event(bool) override { delete this; }

 private:
  grpc::Alarm alarm_;
};

}  // namespace

void CqPoller::poll(TimePoint deadline) {
  if (drained.is_set()) return;
  TimePoint now = std::chrono::steady_clock::now();
  if (deadline == kNoWait && now - last_poll_ < kBusyPollInterval) return;
  last_poll_ = now;
  // What a deferred tag starts may give the loop work: look without waiting.
  if (fire_deferred(deadline != kNoWait)) deadline = kNoWait;
  gpr_timespec wait_until = to_gpr(deadline);
  for (int n = 0; n < kMaxEventsPerPoll; ++n) {
    void* tag;
    bool ok;
    switch (queue_.AsyncNext(&tag, &ok, wait_until)) {
      case grpc::CompletionQueue::GOT_EVENT:
        static_cast<CqTag*>(tag)->on_event(ok);
        if (deadline != kNoWait) {
          // Woken from idle, the event is most often alone, and looking
          // for a second one is a system call in the way of this one's
          // answer. What else is queued waits for the next look: at once
          // if the loop is idle again, else after kBusyPollInterval.
          last_poll_ = std::chrono::steady_clock::now();
          return;
        }
        wait_until = gpr_inf_past(GPR_CLOCK_MONOTONIC);
        break;
      case grpc::CompletionQueue::TIMEOUT:
        return;
      case grpc::CompletionQueue::SHUTDOWN:
        fail_deferred();
        drained.set();
        return;
    }
  }
}

bool CqPoller::fire_deferred(bool loop_idle) {
  if (deferred_before_last_look_.empty() && deferred_since_last_look_.empty()) return false;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return false;  // They fail once the queue is drained.
  }
  std::vector<CqTag*> due = std::move(deferred_before_last_look_);
  deferred_before_last_look_.clear();
  if (loop_idle) {
    due.insert(due.end(), deferred_since_last_look_.begin(), deferred_since_last_look_.end());
    deferred_since_last_look_.clear();
  } else {
    deferred_before_last_look_.swap(deferred_since_last_look_);
  }
  for (CqTag* tag : due) tag->on_event(true);
  return !due.empty();
}

void CqPoller::fail_deferred() {
  while (!deferred_before_last_look_.empty() || !deferred_since_last_look_.empty()) {
    std::vector<CqTag*> due = std::move(deferred_before_last_look_);
    due.insert(due.end(), deferred_since_last_look_.begin(), deferred_since_last_look_.end());
    deferred_before_last_look_.clear();
    deferred_since_last_look_.clear();
    for (CqTag* tag : due) tag->on_event(false);
  }
}

void CqPoller::wake() {
  std::lock_guard lock(mutex_);
  // A closed queue takes no alarm; the loop is not left waiting, as the
  // queue's shutdown ends its wait.
  if (!closed_) new WakeUp(queue_);
}

void CqPoller::shutdown() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  queue_.Shutdown();
}

void CqPoller::shutdown_and_drain() {
  shutdown();
  void* tag;
  bool ok;
  while (queue_.Next(&tag, &ok)) static_cast<CqTag*>(tag)->on_event(ok);
  fail_deferred();
}

}  // namespace taskwire::rpc
