#pragma once

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

  // After a read: the next one is owed.
  void owe() {
    owed_ = true;
    if (deferred_) return;
    deferred_ = true;
    poller_.defer(due_);
  }
  // Right after starting a Write: true if the owed Read starts now.
  bool take() noexcept {
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
  bool owed_ = false;
  bool deferred_ = false;
};

}  // namespace taskwire::rpc
