#pragma once

#include <grpcpp/grpcpp.h>

#include "core/event_loop.h"
#include "rpc/cq_poller.h"
#include "server/call_counter.h"
#include "server/dispatcher.h"
#include "taskwire/v1/workers.grpc.pb.h"

namespace taskwire::server {

// The gRPC face of the Dispatcher: each Connect stream is a WorkerStream,
// read and written on the loop's completion queue (CqPoller), where the
// dispatcher lives. Worker streams are long-lived by design, so they are
// not calls in flight for the drain: shutdown cancels them.
class WorkerService {
 public:
  WorkerService(EventLoop& loop, Dispatcher& dispatcher, LiveCalls& live)
      : loop_(loop), dispatcher_(dispatcher), live_(live) {}

  grpc::Service* service() noexcept { return &service_; }
  // Once the server is started: asks gRPC for the first Connect calls, on
  // the queue that `poller` serves.
  void listen(grpc::ServerCompletionQueue& queue, rpc::CqPoller& poller);

 private:
  friend class WorkerCall;

  EventLoop& loop_;
  Dispatcher& dispatcher_;
  LiveCalls& live_;
  grpc::ServerCompletionQueue* queue_ = nullptr;
  rpc::CqPoller* poller_ = nullptr;
  v1::WorkerService::AsyncService service_;
};

}  // namespace taskwire::server
