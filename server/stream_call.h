#pragma once

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

#include "core/errors.h"
#include "core/event.h"
#include "core/event_loop.h"
#include "core/task.h"
#include "server/call_counter.h"
#include "server/sent.h"

namespace taskwire::server {

// One server-streaming call served by a coroutine on the loop. The loop
// queues messages; gRPC's thread writes them one after another by itself
// (a stream of completions does not bounce between threads per message),
// and the loop only waits when the queue is full. The coroutine's status
// ends the stream once the queue is written. A client that goes away
// cancels the coroutine.
template <typename Message>
class StreamCall final : public grpc::ServerWriteReactor<Message> {
 public:
  // Queues one message; gives false once the stream is broken.
  using Emit = std::function<Sent(const Message&)>;

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
    // Finish() below may let gRPC delete this call: use locals after it.
    std::shared_ptr<Shared> shared = shared_;
    EventLoop& loop = loop_;
    bool wake_loop = false;
    {
      std::lock_guard lock(shared->mutex);
      shared_->queue.pop_front();
      if (!ok) shared_->broken = true;
      if (!shared_->broken && !shared_->queue.empty()) {
        this->StartWrite(&shared_->queue.front());
        wake_loop = shared_->waiting_for_room && shared_->queue.size() < kQueueLimit / 2;
      } else {
        shared_->writing = false;
        if (shared_->finish_requested) this->Finish(shared_->final_status);
        wake_loop = shared_->waiting_for_room;
      }
      if (wake_loop) shared_->waiting_for_room = false;
    }
    if (wake_loop) loop.post([shared] { shared->room.set(); });
  }
  void OnCancel() override {
    loop_.post([shared = shared_] {
      if (shared->task.valid()) shared->task.cancel();
    });
  }
  void OnDone() override { delete this; }

 private:
  static constexpr std::size_t kQueueLimit = 1024;

  struct Shared {
    TaskHandle<void> task;      // Loop thread only.
    Event room;                 // Loop thread only: set when the queue has room.
    std::mutex mutex;           // Guards the rest.
    std::deque<Message> queue;  // queue.front() is being written.
    bool writing = false;
    bool broken = false;
    bool waiting_for_room = false;
    bool finish_requested = false;
    grpc::Status final_status;
  };

  explicit StreamCall(EventLoop& loop) : loop_(loop), shared_(std::make_shared<Shared>()) {}

  Sent emit(const Message& message) {
    {
      std::lock_guard lock(shared_->mutex);
      if (shared_->broken) return Sent(false);
      if (shared_->queue.size() < kQueueLimit) {
        push(message);
        return Sent(true);
      }
    }
    return Sent(emit_when_room(message));
  }

  // Caller holds the mutex and has checked for room.
  void push(const Message& message) {
    shared_->queue.push_back(message);
    if (!shared_->writing) {
      shared_->writing = true;
      this->StartWrite(&shared_->queue.front());
    }
  }

  Task<bool> emit_when_room(Message message) {
    for (;;) {
      {
        std::lock_guard lock(shared_->mutex);
        if (shared_->broken) co_return false;
        if (shared_->queue.size() < kQueueLimit) {
          push(message);
          co_return true;
        }
        shared_->waiting_for_room = true;
        shared_->room.clear();
      }
      co_await shared_->room.wait();
    }
  }

  void finish(const grpc::Status& status) {
    std::lock_guard lock(shared_->mutex);
    if (shared_->writing) {
      // gRPC's thread finishes once the queue is written.
      shared_->finish_requested = true;
      shared_->final_status = status;
    } else {
      this->Finish(status);
    }
  }

  template <typename Handler>
  Task<void> serve(Handler handler, std::shared_ptr<Shared> shared, CallCounter& calls) {
    calls.enter();
    grpc::Status status;
    try {
      status = co_await handler(Emit([this](const Message& message) { return emit(message); }));
    } catch (const CancelledError&) {
      status = grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled");
    } catch (const std::exception& e) {
      status = grpc::Status(grpc::StatusCode::INTERNAL, e.what());
    }
    shared->task = {};
    finish(status);  // May delete this call: touch nothing after.
    calls.leave();
  }

  EventLoop& loop_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace taskwire::server
