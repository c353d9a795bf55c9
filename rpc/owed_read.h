#pragma once

#include "core/event_loop.h"
#include "rpc/cq_poller.h"
#include "rpc/cq_tag.h"

namespace taskwire::rpc {

// A stream's next Read, owed once a message has been read, and started
// with the stream's next Write or when the poller's deferral fires
// (CqPoller::defer), whichever comes first: starting a Read makes gRPC
// send a flow-control update at once, which then leaves in the same
// packet as the message written, not in a system call ahead of it.
//
// The owner starts the Read itself whenever take() or due() says so, and
// stays alive while deferred(): its `due` tag is with the poller.
class OwedRead {
 public:
  OwedRead(CqPoller& poller, CqTag& due) : poller_(poller), due_(due) {}
  ~OwedRead() { linger_.cancel(); }

  // After a read: the next one is owed.
  void owe() {
    owed_ = true;
    if (deferred_) return;
    deferred_ = true;
    poller_.defer(due_);
  }
  // After a read that the peer expects nothing back for: the next one is
  // owed, with the next Write or after `linger`. When a peer is idle, the
  // next message to it most often comes first, and the flow-control update
  // rides with it rather than costing this end a system call and the peer
  // a wake-up of its own; whatever an idle peer says meanwhile is read at
  // most `linger` late.
  void owe_within(EventLoop& loop, Duration linger) {
    owed_ = true;
    if (deferred_ || lingering_) return;
    lingering_ = true;
    linger_ = loop.call_later(linger, [this] {
      lingering_ = false;
      if (owed_) owe();
    });
  }
  // Right after starting a Write: true if the owed Read starts now.
  bool take() noexcept {
    if (lingering_) {
      lingering_ = false;
      linger_.cancel();
    }
    bool owed = owed_;
    owed_ = false;
    return owed;
  }
  // From the `due` tag's event: true if the owed Read starts now (never
  // on a queue that is shut down).
  bool due(bool queue_open) noexcept {
    deferred_ = false;
    return queue_open && take();
  }
  bool deferred() const noexcept { return deferred_; }

 private:
  CqPoller& poller_;
  CqTag& due_;
  CallbackHandle linger_;
  bool lingering_ = false;  // linger_ is due to run.
  bool owed_ = false;
  bool deferred_ = false;
};

}  // namespace taskwire::rpc
