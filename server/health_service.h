#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "core/event.h"
#include "core/event_loop.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/call_counter.h"
#include "server/stream_call.h"
#include "server/unary_call.h"

namespace taskwire::server {

// grpc.health.v1.Health on the loop's completion queue, for the whole
// server ("") and for taskwire.v1.TaskService, which share one status.
// gRPC's built-in health service would run on threads of its own, which
// then take part in polling the server's connections and hand every call
// over to the loop's thread.
class HealthService {
 public:
  using Request = ::grpc::health::v1::HealthCheckRequest;
  using Response = ::grpc::health::v1::HealthCheckResponse;

  HealthService(EventLoop& loop, LiveCalls& live) : loop_(loop), live_(live) {}

  grpc::Service* service() noexcept { return &service_; }
  void listen(grpc::ServerCompletionQueue& queue);

  // Loop thread: SERVING or NOT_SERVING, told to every watcher.
  void set_serving(bool serving);

 private:
  using Async = ::grpc::health::v1::Health::AsyncService;

  Response::ServingStatus status_of(const std::string& service) const;
  Task<grpc::Status> check(const Request& request, Response* response);
  Task<grpc::Status> watch(const Request& request,
                           StreamMethod<Async, Request, Response>::Emit emit);

  EventLoop& loop_;
  LiveCalls& live_;
  Async service_;
  // Health calls are not waited for when the server drains: a Watch lasts
  // as long as its client wants.
  CallCounter calls_;
  UnaryMethod<Async, Request, Response> check_{};
  StreamMethod<Async, Request, Response> watch_{};
  bool serving_ = false;
  // Set, and replaced by a fresh one, at each change of status.
  std::shared_ptr<Event> changed_ = std::make_shared<Event>();
};

}  // namespace taskwire::server
