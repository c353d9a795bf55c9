#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <utility>

#include "core/errors.h"
#include "core/event_loop.h"
#include "core/task.h"
#include "rpc/cq_tag.h"
#include "server/call_counter.h"
#include "server/call_report.h"
#include "server/metrics/rpc_metrics.h"

namespace taskwire::server {

// One unary method of an async gRPC service, served on the loop: which
// method to ask gRPC for, and the coroutine that answers a call of it.
template <typename Service, typename Request, typename Response>
struct UnaryMethod {
  using RequestFn = void (Service::*)(grpc::ServerContext*, Request*,
                                      grpc::ServerAsyncResponseWriter<Response>*,
                                      grpc::CompletionQueue*, grpc::ServerCompletionQueue*, void*);
  // The request is the call's own: a handler may take parts of it.
  using Handler = std::function<Task<grpc::Status>(Request&, Response*, const CallInfo&)>;

  Service* service;
  RequestFn request;
  Handler handler;
  grpc::ServerCompletionQueue* queue;
  EventLoop* loop;
  CallCounter* calls;
  LiveCalls* live;
  // "package.Service/Method", for logs and metrics.
  const char* name = "";
  // Null when metrics are off.
  metrics::RpcMetrics* metrics = nullptr;
};

// One call of a unary method, from gRPC's announcement of it to the end of
// its answer, all on the loop thread (its tags come through CqPoller). A
// client that goes away (or whose deadline passes) cancels the coroutine
// that answers it, which leaves nothing behind.
template <typename Service, typename Request, typename Response>
class UnaryCall {
 public:
  using Method = UnaryMethod<Service, Request, Response>;

  // Asks gRPC for the method's next call. Each call, once it arrives, asks
  // for the one after it, so a method always has one request outstanding.
  // `method` must outlive its calls.
  static void listen(const Method& method) { (new UnaryCall(method))->request(); }

 private:
  explicit UnaryCall(const Method& method) : method_(method), responder_(&context_) {
    method_.live->created();
  }
  ~UnaryCall() { method_.live->destroyed(); }

  void request() {
    context_.AsyncNotifyWhenDone(&done_);
    (method_.service->*method_.request)(&context_, &request_, &responder_, method_.queue,
                                        method_.queue, &arrived_);
  }

  void on_arrived(bool ok) {
    if (!ok) {
      // The server is shutting down; a call that never started gets no
      // done event.
      delete this;
      return;
    }
    listen(method_);
    report_.arrived(method_.metrics);
    task_ = method_.loop->create_task(serve());
  }

  Task<void> serve() {
    const CallCounter::Id id = method_.calls->enter([this] {
      if (task_.valid()) task_.cancel();
    });
    grpc::Status status;
    const CallInfo info = report_.info(context_);
    try {
      status = co_await method_.handler(request_, &response_, info);
    } catch (const CancelledError&) {
      status = method_.calls->stopping()
                   ? stopped_by_shutdown()
                   : grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled");
    } catch (const std::exception& e) {
      status = grpc::Status(grpc::StatusCode::INTERNAL, e.what());
    }
    task_ = {};
    finish(status);
    method_.calls->leave(id);
  }

  void finish(const grpc::Status& status) {
    report_.ended(method_.name, method_.metrics, status);
    finish_started_ = true;
    responder_.Finish(response_, status, &finished_);
  }

  void on_finished(bool) {
    finished_seen_ = true;
    delete_if_over();
  }

  void on_done(bool) {
    done_seen_ = true;
    if (task_.valid()) {
      // Done before it was answered: the client went away. A handler
      // cancelled before its first step never runs, so the answer is
      // then sent from here.
      task_.cancel();
      callback_pending_ = true;
      task_.add_done_callback([this](const TaskHandle<void>&) {
        callback_pending_ = false;
        if (!finish_started_) finish(grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled"));
        delete_if_over();
      });
      return;
    }
    delete_if_over();
  }

  void delete_if_over() {
    if (finished_seen_ && done_seen_ && !callback_pending_) delete this;
  }

  const Method& method_;
  grpc::ServerContext context_;
  Request request_;
  Response response_;
  grpc::ServerAsyncResponseWriter<Response> responder_;
  TaskHandle<void> task_;  // Until the answer is sent.
  CallReport report_;
  bool finish_started_ = false;
  bool finished_seen_ = false;
  bool done_seen_ = false;
  bool callback_pending_ = false;
  rpc::MemberTag<UnaryCall, &UnaryCall::on_arrived> arrived_{this};
  rpc::MemberTag<UnaryCall, &UnaryCall::on_finished> finished_{this};
  rpc::MemberTag<UnaryCall, &UnaryCall::on_done> done_{this};
};

}  // namespace taskwire::server
