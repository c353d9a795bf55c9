#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <coroutine>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "client/errors.h"
#include "core/clock.h"
#include "core/detail/task_state.h"
#include "core/event_loop.h"

namespace taskwire::client {

// How a unary call reacts when the task awaiting it is cancelled.
enum class OnCancel {
  kAbandon,     // Cancel the call; the awaiting task sees CancelledError.
  kFinishFirst  // Let the call finish and return its answer; was_cancelled()
                // then says the task was asked to stop.
};

// One unary call made through gRPC's callback API, awaited in a task: gRPC's
// thread hands the answer to the task's loop, so waiting costs no thread.
// Throws the RpcError subclass for a failed call.
//
// The loop must outlive the call (gRPC answers every call, cancelled or not).
// The request is the caller's: gRPC serializes it when the call starts, and
// it is not copied, so one request serves every retry of a large call.
template <typename Request, typename Response>
class [[nodiscard]] RpcCall final : private ::taskwire::detail::Suspension {
 public:
  // Starts the call: (context, request, response, on_done).
  using Start = std::function<void(grpc::ClientContext*, const Request*, Response*,
                                   std::function<void(grpc::Status)>)>;

  RpcCall(Start start, const Request& request, std::optional<Duration> timeout,
          OnCancel on_cancel = OnCancel::kAbandon)
      : state_(std::make_shared<State>()),
        start_(std::move(start)),
        request_(&request),
        on_cancel_(on_cancel) {
    if (timeout) {
      state_->context.set_deadline(
          std::chrono::system_clock::now() +
          std::chrono::duration_cast<std::chrono::system_clock::duration>(*timeout));
    }
  }

  bool was_cancelled() const noexcept { return cancelled_; }

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> resume_point) {
    ::taskwire::detail::TaskStateBase& task = ::taskwire::detail::require_current_task();
    state_->loop = &task.loop();
    state_->waiting = &task;
    std::shared_ptr<State> state = state_;
    start_(&state->context, request_, &state->response, [state](grpc::Status status) mutable {
      // On gRPC's thread: hand the answer, and this callback's share
      // of the state, to the loop. gRPC destroys the callback only
      // after it returns, by which time the loop may have finished
      // with the call and its Client: were the state still held here,
      // the call's ClientContext, and with it possibly the last
      // reference to the channel, would be destroyed on gRPC's thread,
      // which then shuts gRPC down on a detached thread that races
      // with the process's exit (ASan saw double frees at exit).
      EventLoop* loop = state->loop;
      loop->post([state = std::move(state), status = std::move(status)]() mutable {
        state->status = std::move(status);
        state->waiting->wake();
      });
    });
    task.suspend(resume_point, this);
  }
  Response await_resume() {
    if (state_->waiting->take_cancel_request()) cancelled_ = true;
    if (cancelled_ && on_cancel_ == OnCancel::kAbandon) throw CancelledError();
    if (!state_->status.ok()) throw_rpc_error(state_->status);
    return std::move(state_->response);
  }

 private:
  struct State {
    grpc::ClientContext context;
    Response response;
    grpc::Status status;
    EventLoop* loop = nullptr;
    ::taskwire::detail::TaskStateBase* waiting = nullptr;
  };

  // The task stays suspended until gRPC answers, cancelled or not: its
  // request and response live until then.
  void cancel() override {
    cancelled_ = true;
    if (on_cancel_ == OnCancel::kAbandon) state_->context.TryCancel();
  }

  std::shared_ptr<State> state_;
  Start start_;
  const Request* request_;
  OnCancel on_cancel_;
  bool cancelled_ = false;
};

}  // namespace taskwire::client
