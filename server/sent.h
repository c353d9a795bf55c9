#pragma once

#include <coroutine>
#include <optional>
#include <utility>

#include "core/task.h"

namespace taskwire::server {

// What sending a stream message gives: already settled when the message was
// queued at once (the common case: no coroutine to resume), or a Task to
// await when the sender must wait for room. A loop that sends ten thousand
// messages then never nests ten thousand coroutine resumptions, which
// matters in builds where symmetric transfer is not a tail call.
class [[nodiscard]] Sent {
 public:
  explicit Sent(bool sent) : settled_(sent) {}
  explicit Sent(Task<bool> pending) : pending_(std::move(pending)) {}

  bool await_ready() const noexcept { return settled_.has_value(); }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) {
    awaiter_.emplace(std::move(pending_).operator co_await());
    return awaiter_->await_suspend(awaiting);
  }
  bool await_resume() { return settled_ ? *settled_ : awaiter_->await_resume(); }

 private:
  using PendingAwaiter = decltype(std::declval<Task<bool>>().operator co_await());

  std::optional<bool> settled_;
  Task<bool> pending_;
  std::optional<PendingAwaiter> awaiter_;
};

}  // namespace taskwire::server
