#pragma once

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "client/remote_id.h"
#include "core/future.h"
#include "core/shield.h"
#include "core/task.h"
#include "core/task_handle.h"
#include "taskwire/v1/tasks.pb.h"

namespace taskwire::client {

using google::protobuf::Value;

namespace detail {

class Batch;

// What the client keeps of a remote task besides its future, in 22 bytes:
// the server's id and the few small fields that fit beside it.
struct RemoteFields {
  RemoteId id;  // Once the creation call has answered.
  // The server's final state (a v1::TaskState), once finished; 0 if the
  // task could not be created or followed.
  std::uint8_t remote_state = 0;
  bool cancel_requested = false;
  // The attempt that finished it (from the server; saturates).
  std::uint16_t attempt = 0;
};
static_assert(sizeof(RemoteFields) == 22);

// One remote task as the client knows it: a core future (so that a
// TaskHandle refers to it and core's combinators take it) completed with
// the remote outcome, plus the server's id. Created by Client::create_task,
// completed by the call that follows its batch.
class RemoteState final : public ::taskwire::detail::FutureState<Value> {
 public:
  explicit RemoteState(EventLoop& loop) : FutureState(loop) {}

  RemoteFields remote;     // The id once the creation call has answered.
  Batch* batch = nullptr;  // Creating or following it; valid while it is pending.

  // Until the creation call has answered (or failed); the state must be
  // kept alive by the caller.
  Task<void> wait_created();

 private:
  // Cancelling a remote task asks the server, and it finishes once the
  // server says how it ended (cancelled, or finished before it saw the
  // request).
  void on_cancel_requested() override;
};
// One per awaited remote task (a gather of 100,000 holds 100,000), from
// core's pool of 16-byte size classes.
static_assert(sizeof(RemoteState) == 128);

}  // namespace detail

// A task running on the server, as the client sees it. Awaiting it gives the
// remote result as a Value, or throws RemoteTaskError (the remote type and
// message) or CancelledError; RpcError if the server cannot be asked.
//
// Cancellation, as the issue of who owns the remote work demands:
// - cancel(), and anything that cancels handle() — wait_for's timeout, a
//   gather or TaskGroup being cancelled — cancel the remote task, as asyncio
//   cancels an awaited task;
// - cancelling a coroutine that is merely awaiting `co_await remote` does
//   not: the remote task runs on (it is shielded), since other processes
//   may be waiting for it too. Call cancel() to stop it.
class RemoteTask {
 public:
  RemoteTask() = default;
  explicit RemoteTask(TaskHandle<Value> handle) : handle_(std::move(handle)) {}

  // The server's id; empty until the creation call has answered.
  std::string id() const { return state().remote.id.text(); }
  bool has_id() const noexcept { return !state().remote.id.empty(); }
  // The server's id, once the creation call has answered; throws what the
  // creation failed with.
  Task<std::string> created_id() const {
    TaskHandle<Value> keep = handle_;
    auto& state = static_cast<detail::RemoteState&>(*keep.state());
    while (state.remote.id.empty() && !state.done()) co_await state.wait_created();
    if (state.remote.id.empty()) {
      state.rethrow_if_unsuccessful();
      throw InvalidStateError("remote task finished without an id");
    }
    co_return state.remote.id.text();
  }
  bool done() const noexcept { return handle_.done(); }
  // Asks the server to cancel the task; false if it has already finished.
  bool cancel() const { return handle_.cancel(); }
  // The remote task, for core's combinators (gather, wait, wait_for,
  // as_completed, TaskGroup), where it mixes with local tasks. Cancelling
  // it cancels the remote task. (No local task runs behind it: it is a
  // future that the client completes.)
  const TaskHandle<Value>& handle() const noexcept { return handle_; }
  // The task's outcome once it has finished, as the server's OUTCOME view
  // gives it: id, state, attempt, and result or error (Client::get has the
  // rest). Empty while it runs, or if it could not be created.
  std::optional<v1::Task> record() const;

  ShieldAwaiter<Value> operator co_await() const { return shield(handle_); }

 private:
  detail::RemoteState& state() const noexcept {
    return static_cast<detail::RemoteState&>(*handle_.state());
  }

  TaskHandle<Value> handle_;
};

}  // namespace taskwire::client
