#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <utility>

#include "core/errors.h"
#include "core/event.h"
#include "core/event_loop.h"
#include "core/task.h"
#include "server/call_counter.h"

namespace taskwire::server {

// One server-streaming call served by a coroutine on the loop, which writes
// one message at a time (each write completes when gRPC has taken it) and
// whose status ends the stream. A client that goes away cancels it.
template <typename Message>
class StreamCall final : public grpc::ServerWriteReactor<Message> {
 public:
  using Emit = std::function<Task<bool>(const Message&)>;

  // `handler` is called on the loop with an Emit and returns a
  // Task<grpc::Status>.
  template <typename Handler>
  static grpc::ServerWriteReactor<Message>* start(EventLoop& loop, CallCounter& calls,
                                                  Handler handler) {
    auto* call = new StreamCall(loop);
    loop.post([call, &calls, shared = call->shared_, handler = std::move(handler)]() mutable {
      shared->task = call->loop_.create_task(call->serve(std::move(handler), shared, calls));
    });
    return call;
  }

  void OnWriteDone(bool ok) override {
    loop_.post([shared = shared_, ok] {
      shared->write_ok = ok;
      shared->written.set();
    });
  }
  void OnCancel() override {
    loop_.post([shared = shared_] {
      if (shared->task.valid()) shared->task.cancel();
    });
  }
  void OnDone() override { delete this; }

 private:
  struct Shared {
    TaskHandle<void> task;
    Message message;  // The one write in flight.
    Event written;
    bool write_ok = false;
  };

  explicit StreamCall(EventLoop& loop) : loop_(loop), shared_(std::make_shared<Shared>()) {}

  Task<bool> write(const Message& message) {
    shared_->message = message;
    shared_->written.clear();
    this->StartWrite(&shared_->message);
    co_await shared_->written.wait();
    co_return shared_->write_ok;
  }

  template <typename Handler>
  Task<void> serve(Handler handler, std::shared_ptr<Shared> shared, CallCounter& calls) {
    calls.enter();
    grpc::Status status;
    try {
      status = co_await handler(Emit([this](const Message& message) { return write(message); }));
    } catch (const CancelledError&) {
      status = grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled");
    } catch (const std::exception& e) {
      status = grpc::Status(grpc::StatusCode::INTERNAL, e.what());
    }
    shared->task = {};
    this->Finish(status);  // May delete this call: touch nothing after.
    calls.leave();
  }

  EventLoop& loop_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace taskwire::server
