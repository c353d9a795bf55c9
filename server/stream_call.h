#pragma once

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <deque>
#include <functional>
#include <utility>

#include "core/errors.h"
#include "core/event.h"
#include "core/event_loop.h"
#include "core/task.h"
#include "rpc/cq_tag.h"
#include "server/call_counter.h"
#include "server/call_report.h"
#include "server/metrics/rpc_metrics.h"
#include "server/sent.h"

namespace taskwire::server {

// One server-streaming method of an async gRPC service, served on the loop.
template <typename Service, typename Request, typename Message>
struct StreamMethod {
  using RequestFn = void (Service::*)(grpc::ServerContext*, Request*,
                                      grpc::ServerAsyncWriter<Message>*, grpc::CompletionQueue*,
                                      grpc::ServerCompletionQueue*, void*);
  // Queues one message, taking its contents (the caller's message is left
  // empty: a run of a thousand tasks is moved into the queue, not copied);
  // gives false once the stream is broken. A reference rather than a value
  // parameter: no temporary inside the handler's co_await (GCC 12).
  using Emit = std::function<Sent(Message&)>;
  using Handler = std::function<Task<grpc::Status>(const Request&, Emit, const CallInfo&)>;

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

// One call of a server-streaming method. The stream's initial metadata goes
// out as soon as the call arrives, so that the client's first batch of
// operations (which holds its serialized request: 10,000 ids for a client
// following 10,000 tasks) completes at once rather than with the first
// message, which may come hours later. The handler queues messages; they are
// written one after another as gRPC completes each write, and the handler
// waits only when the queue is full. The handler's status ends the stream
// once the queue is written. A client that goes away cancels the handler.
// Everything happens on the loop thread.
template <typename Service, typename Request, typename Message>
class StreamCall {
 public:
  using Method = StreamMethod<Service, Request, Message>;

  // `method` must outlive its calls.
  static void listen(const Method& method) { (new StreamCall(method))->request(); }

 private:
  static constexpr std::size_t kQueueLimit = 1024;

  explicit StreamCall(const Method& method) : method_(method), writer_(&context_) {
    method_.live->created();
  }
  ~StreamCall() { method_.live->destroyed(); }

  void request() {
    context_.AsyncNotifyWhenDone(&done_);
    (method_.service->*method_.request)(&context_, &request_, &writer_, method_.queue,
                                        method_.queue, &arrived_);
  }

  void on_arrived(bool ok) {
    if (!ok) {
      delete this;  // Shutting down; no done event comes.
      return;
    }
    listen(method_);
    report_.arrived(method_.metrics);
    // The metadata holds the write slot: messages queue behind it, and the
    // stream is finished only once it has gone.
    writing_ = true;
    writer_.SendInitialMetadata(&metadata_sent_);
    task_ = method_.loop->create_task(serve());
  }

  Task<void> serve() {
    const CallCounter::Id id = method_.calls->enter([this] {
      if (task_.valid()) task_.cancel();
    });
    grpc::Status status;
    // Named: GCC 12 may destroy a temporary argument inside co_await twice.
    typename Method::Emit emit_one([this](Message& message) { return emit(message); });
    const CallInfo info = report_.info(context_);
    try {
      status = co_await method_.handler(request_, std::move(emit_one), info);
    } catch (const CancelledError&) {
      status = method_.calls->stopping()
                   ? stopped_by_shutdown()
                   : grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled");
    } catch (const std::exception& e) {
      status = grpc::Status(grpc::StatusCode::INTERNAL, e.what());
    }
    task_ = {};
    request_finish(std::move(status));
    method_.calls->leave(id);
  }

  void request_finish(grpc::Status status) {
    final_status_ = std::move(status);
    finish_requested_ = true;
    if (!writing_) finish();
  }

  Sent emit(Message& message) {
    if (broken_) return Sent(false);
    if (queue_.size() < kQueueLimit) {
      push(message);
      return Sent(true);
    }
    Message held;
    held.Swap(&message);
    return Sent(emit_when_room(std::move(held)));
  }

  // Takes `message`'s contents.
  void push(Message& message) {
    queue_.emplace_back().Swap(&message);
    if (!writing_) {
      writing_ = true;
      write_front();
    }
  }

  // While more messages wait behind this one, gRPC may hold it back and
  // send them together: one system call for a run of messages rather than
  // one each. The last one queued goes without the hint, so nothing stays
  // held.
  void write_front() {
    grpc::WriteOptions options;
    if (queue_.size() > 1) options.set_buffer_hint();
    writer_.Write(queue_.front(), options, &written_);
  }

  Task<bool> emit_when_room(Message message) {
    while (!broken_ && queue_.size() >= kQueueLimit) {
      room_.clear();
      co_await room_.wait();
    }
    if (broken_) co_return false;
    push(message);
    co_return true;
  }

  void on_metadata_sent(bool ok) { write_next(ok); }

  void on_written(bool ok) {
    queue_.pop_front();
    write_next(ok);
  }

  // The write slot is free again (`ok`: what held it went out): the next
  // queued message takes it, or the stream finishes if the handler is done.
  void write_next(bool ok) {
    if (!ok) broken_ = true;
    if (!broken_ && !queue_.empty()) {
      write_front();
    } else {
      writing_ = false;
      if (finish_requested_) finish();
    }
    if (broken_ || queue_.size() < kQueueLimit / 2) room_.set();
  }

  void finish() {
    report_.ended(method_.name, method_.metrics, final_status_);
    finish_started_ = true;
    writer_.Finish(final_status_, &finished_);
  }

  void on_finished(bool) {
    finished_seen_ = true;
    delete_if_over();
  }

  void on_done(bool) {
    done_seen_ = true;
    if (task_.valid()) {
      // The client went away. A handler cancelled before its first step
      // never runs, so the stream is then ended from here.
      task_.cancel();
      callback_pending_ = true;
      task_.add_done_callback([this](const TaskHandle<void>&) {
        callback_pending_ = false;
        if (!finish_requested_)
          request_finish(grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled"));
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
  grpc::ServerAsyncWriter<Message> writer_;
  TaskHandle<void> task_;  // While the handler runs.
  CallReport report_;
  std::deque<Message> queue_;  // After the metadata, queue_.front() is being written.
  Event room_;                 // Set when the queue has room.
  bool writing_ = false;       // The metadata or queue_.front() is being written.
  bool broken_ = false;
  bool finish_requested_ = false;
  bool finish_started_ = false;
  bool finished_seen_ = false;
  bool done_seen_ = false;
  bool callback_pending_ = false;
  grpc::Status final_status_;
  rpc::MemberTag<StreamCall, &StreamCall::on_arrived> arrived_{this};
  rpc::MemberTag<StreamCall, &StreamCall::on_metadata_sent> metadata_sent_{this};
  rpc::MemberTag<StreamCall, &StreamCall::on_written> written_{this};
  rpc::MemberTag<StreamCall, &StreamCall::on_finished> finished_{this};
  rpc::MemberTag<StreamCall, &StreamCall::on_done> done_{this};
};

}  // namespace taskwire::server
