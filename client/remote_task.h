#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <string>

#include "core/event.h"
#include "core/shield.h"
#include "core/task_handle.h"
#include "taskwire/v1/tasks.pb.h"

namespace taskwire::client {

using google::protobuf::Value;

namespace detail {

// What the client knows of one remote task; shared by the RemoteTask, the
// local task that follows it, and the batch that created it.
struct RemoteState {
  std::string id;                     // Once created.
  Event created;                      // Set once created, or once creation failed.
  std::exception_ptr creation_error;  // Why it could not be created.
  std::optional<v1::Task> final;      // Once it has finished on the server.
  Event finished;                     // Set with `final`.
  bool cancel_requested = false;
};

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
  RemoteTask(std::shared_ptr<detail::RemoteState> state, TaskHandle<Value> follower)
      : state_(std::move(state)), follower_(std::move(follower)) {}

  // The server's id; empty until the creation call has answered.
  const std::string& id() const noexcept { return state_->id; }
  // The server's id, once the creation call has answered; throws what the
  // creation failed with.
  Task<std::string> created_id() const {
    std::shared_ptr<detail::RemoteState> state = state_;
    co_await state->created.wait();
    if (state->creation_error) std::rethrow_exception(state->creation_error);
    co_return state->id;
  }
  bool done() const noexcept { return follower_.done(); }
  // Asks the server to cancel the task; false if it has already finished.
  bool cancel() const { return follower_.cancel(); }
  // The local task that follows the remote one, for core's combinators
  // (gather, wait, wait_for, as_completed, TaskGroup), where it mixes with
  // local tasks. Cancelling it cancels the remote task.
  const TaskHandle<Value>& handle() const noexcept { return follower_; }
  // The task's outcome once it has finished, as the server's OUTCOME view
  // gives it: id, state, attempt, and result or error (Client::get has the
  // rest).
  const std::optional<v1::Task>& record() const noexcept { return state_->final; }

  ShieldAwaiter<Value> operator co_await() const { return shield(follower_); }

 private:
  std::shared_ptr<detail::RemoteState> state_;
  TaskHandle<Value> follower_;
};

}  // namespace taskwire::client
