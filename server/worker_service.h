#pragma once

#include <grpcpp/grpcpp.h>

#include "core/event_loop.h"
#include "server/dispatcher.h"
#include "taskwire/v1/workers.grpc.pb.h"

namespace taskwire::server {

// The gRPC face of the Dispatcher: each Connect stream is a WorkerStream.
// gRPC's threads read and write; every message read is handed to the loop,
// where the dispatcher lives. Worker streams are long-lived by design, so
// they are not calls in flight for the drain: shutdown cancels them.
class WorkerService final : public v1::WorkerService::CallbackService {
 public:
  WorkerService(EventLoop& loop, Dispatcher& dispatcher) : loop_(loop), dispatcher_(dispatcher) {}

  grpc::ServerBidiReactor<v1::WorkerMessage, v1::ServerMessage>* Connect(
      grpc::CallbackServerContext* context) override;

 private:
  EventLoop& loop_;
  Dispatcher& dispatcher_;
};

}  // namespace taskwire::server
