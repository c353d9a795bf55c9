#include "server/worker_service.h"

#include <deque>
#include <memory>
#include <mutex>
#include <optional>

namespace taskwire::server {
namespace {

using Reactor = grpc::ServerBidiReactor<v1::WorkerMessage, v1::ServerMessage>;

// What the loop and gRPC's threads share about one stream. The reactor may
// be gone (OnDone) while the dispatcher still holds the WorkerStream: sends
// are then dropped.
struct Shared final : WorkerStream {
  std::mutex mutex;
  Reactor* reactor = nullptr;           // Null once done. Guarded by mutex.
  std::deque<v1::ServerMessage> queue;  // queue.front() is being written.
  bool writing = false;
  bool finishing = false;  // Finish() called or pending.
  std::optional<grpc::Status> final_status;
  // Loop thread only.
  Dispatcher* dispatcher = nullptr;
  Dispatcher::WorkerId id = 0;
  bool attached = false;

  void send(const v1::ServerMessage& message) override {
    std::lock_guard lock(mutex);
    if (reactor == nullptr || finishing) return;
    queue.push_back(message);
    if (!writing) {
      writing = true;
      reactor->StartWrite(&queue.front());
    }
  }
  void close(const grpc::Status& status) override {
    std::lock_guard lock(mutex);
    if (reactor == nullptr || finishing) return;
    finishing = true;
    if (writing) {
      final_status = status;  // Finished once the queue is written.
    } else {
      reactor->Finish(status);
    }
  }
};

class WorkerCall final : public Reactor {
 public:
  WorkerCall(EventLoop& loop, Dispatcher& dispatcher)
      : loop_(loop), shared_(std::make_shared<Shared>()) {
    shared_->reactor = this;
    shared_->dispatcher = &dispatcher;
    loop_.post([shared = shared_] {
      shared->id = shared->dispatcher->attach(shared.get());
      shared->attached = true;
    });
    StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The worker closed its side (or the call broke): end the stream.
      shared_->close(grpc::Status::OK);
      return;
    }
    loop_.post([shared = shared_, message = std::move(incoming_)] {
      if (shared->attached) shared->dispatcher->receive(shared->id, message);
    });
    incoming_.Clear();
    StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(shared_->mutex);
    shared_->queue.pop_front();
    if (ok && !shared_->queue.empty()) {
      StartWrite(&shared_->queue.front());
      return;
    }
    shared_->writing = false;
    if (!ok) shared_->queue.clear();
    if (shared_->final_status) {
      Finish(*shared_->final_status);
    } else if (!ok && !shared_->finishing) {
      shared_->finishing = true;
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
    }
  }

  void OnDone() override {
    {
      std::lock_guard lock(shared_->mutex);
      shared_->reactor = nullptr;
    }
    // The dispatcher forgets the worker (and its running attempts are
    // re-dispatched) on the loop; `shared` keeps the stream object valid
    // until then.
    loop_.post([shared = shared_] {
      if (shared->attached) shared->dispatcher->detach(shared->id);
      shared->attached = false;
    });
    delete this;
  }

 private:
  EventLoop& loop_;
  std::shared_ptr<Shared> shared_;
  v1::WorkerMessage incoming_;  // gRPC's thread only.
};

}  // namespace

Reactor* WorkerService::Connect(grpc::CallbackServerContext*) {
  return new WorkerCall(loop_, dispatcher_);
}

}  // namespace taskwire::server
