#include "server/health_service.h"

#include <utility>

namespace taskwire::server {
namespace {

constexpr char kTaskService[] = "taskwire.v1.TaskService";
constexpr int kCallsRequestedAhead = 4;

}  // namespace

void HealthService::listen(grpc::ServerCompletionQueue& queue) {
  check_ = {&service_,
            &Async::RequestCheck,
            [this](const Request& request, Response* response, const CallInfo&) {
              return check(request, response);
            },
            &queue,
            &loop_,
            &calls_,
            &live_};
  watch_ = {&service_,
            &Async::RequestWatch,
            [this](const Request& request, StreamMethod<Async, Request, Response>::Emit emit,
                   const CallInfo&) { return watch(request, std::move(emit)); },
            &queue,
            &loop_,
            &calls_,
            &live_};
  for (int i = 0; i < kCallsRequestedAhead; ++i) {
    UnaryCall<Async, Request, Response>::listen(check_);
    StreamCall<Async, Request, Response>::listen(watch_);
  }
}

void HealthService::set_serving(bool serving) {
  if (serving == serving_) return;
  serving_ = serving;
  std::exchange(changed_, std::make_shared<Event>())->set();
}

HealthService::Response::ServingStatus HealthService::status_of(const std::string& service) const {
  if (!service.empty() && service != kTaskService) return Response::SERVICE_UNKNOWN;
  return serving_ ? Response::SERVING : Response::NOT_SERVING;
}

Task<grpc::Status> HealthService::check(const Request& request, Response* response) {
  Response::ServingStatus status = status_of(request.service());
  if (status == Response::SERVICE_UNKNOWN) {
    co_return grpc::Status(grpc::StatusCode::NOT_FOUND,
                           "service: unknown service '" + request.service() + "'");
  }
  response->set_status(status);
  co_return grpc::Status::OK;
}

Task<grpc::Status> HealthService::watch(const Request& request,
                                        StreamMethod<Async, Request, Response>::Emit emit) {
  for (;;) {
    std::shared_ptr<Event> changed = changed_;
    Response response;
    response.set_status(status_of(request.service()));
    if (!co_await emit(response))
      co_return grpc::Status(grpc::StatusCode::CANCELLED, "stream closed");
    co_await changed->wait();
  }
}

}  // namespace taskwire::server
