#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <utility>

#include "core/errors.h"
#include "core/event_loop.h"
#include "core/task.h"
#include "server/call_counter.h"

namespace taskwire::server {

// One unary call served by a coroutine on the loop: gRPC's thread hands the
// call to the loop at once; the coroutine's status finishes it. A client
// that goes away (or whose deadline passes) cancels the coroutine, which
// leaves nothing behind.
class UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  // `handler` is called on the loop and returns a Task<grpc::Status>.
  template <typename Handler>
  static grpc::ServerUnaryReactor* start(EventLoop& loop, CallCounter& calls, Handler handler) {
    auto* call = new UnaryCall(loop);
    loop.post([call, &calls, shared = call->shared_, handler = std::move(handler)]() mutable {
      shared->task = call->loop_.create_task(call->serve(std::move(handler), shared, calls));
    });
    return call;
  }

  void OnCancel() override {
    loop_.post([shared = shared_] {
      if (shared->task.valid()) shared->task.cancel();
    });
  }
  void OnDone() override { delete this; }

 private:
  // Touched on the loop thread only; may be freed on gRPC's.
  struct Shared {
    TaskHandle<void> task;  // Until the call is finished.
  };

  explicit UnaryCall(EventLoop& loop) : loop_(loop), shared_(std::make_shared<Shared>()) {}

  template <typename Handler>
  Task<void> serve(Handler handler, std::shared_ptr<Shared> shared, CallCounter& calls) {
    calls.enter();
    grpc::Status status;
    try {
      status = co_await handler();
    } catch (const CancelledError&) {
      status = grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled");
    } catch (const std::exception& e) {
      status = grpc::Status(grpc::StatusCode::INTERNAL, e.what());
    }
    shared->task = {};
    Finish(status);  // May delete this call: touch nothing after.
    calls.leave();
  }

  EventLoop& loop_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace taskwire::server
