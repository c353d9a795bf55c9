#pragma once

#include <google/protobuf/struct.pb.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "core/event.h"
#include "core/event_loop.h"
#include "core/task.h"
#include "rpc/cq_poller.h"
#include "taskwire/v1/workers.grpc.pb.h"

namespace taskwire::client {

namespace v1 = ::taskwire::v1;
using google::protobuf::Value;

struct WorkerOptions {
  // host:port. Empty: $TASKWIRE_SERVER, else 127.0.0.1:50051.
  std::string target;
  // Shown in the server's logs. Empty: "<hostname>:<pid>".
  std::string identity;
  // Tasks run at once (the credits the worker announces).
  std::uint32_t credits = 16;
  // Threads for handle_blocking handlers.
  std::size_t blocking_threads = 4;
  // Reconnecting after a lost stream waits this long, doubling per failed
  // try up to max_reconnect_delay.
  Duration initial_reconnect_delay = std::chrono::milliseconds(100);
  Duration max_reconnect_delay = std::chrono::seconds(5);
  // Where the worker reports what it cannot act on (rejections, lost
  // streams). Empty: standard error.
  std::function<void(const std::string&)> log;
};

// What a handler knows about its task; a cheap handle, safe to copy and
// to use from a blocking handler's thread.
class WorkerTaskContext {
 public:
  const std::string& task_id() const noexcept;
  std::uint32_t attempt() const noexcept;
  const std::string& kind() const noexcept;
  // True once the server asked for the task to stop. A coroutine handler
  // needs no check (it sees CancelledError at its next suspension point);
  // a blocking handler polls this.
  bool cancel_requested() const noexcept;
  // Tells the server the task is alive (which its heartbeat_timeout, if any,
  // requires), with optional progress details. Thread-safe.
  void heartbeat(Value details) const;
  void heartbeat() const;

  struct State;
  explicit WorkerTaskContext(std::shared_ptr<State> state) : state_(std::move(state)) {}

 private:
  std::shared_ptr<State> state_;
};

// Thrown by a handler to fail its task with an error type of its choosing;
// any other exception fails it with type "Error" (and retries follow the
// task's retry policy).
class HandlerError : public std::runtime_error {
 public:
  HandlerError(std::string type, const std::string& message, bool non_retryable)
      : std::runtime_error(message), type_(std::move(type)), non_retryable_(non_retryable) {}
  const std::string& type() const noexcept { return type_; }
  bool non_retryable() const noexcept { return non_retryable_; }

 private:
  std::string type_;
  bool non_retryable_;
};

// A worker: connects to taskwired, announces the kinds it handles, and
// runs the tasks the server assigns it, at most `credits` at once, each as
// a task on `loop`. When the server cancels a task (CancelTask, a timeout),
// the task running its handler is cancelled. A lost stream is reopened with
// backoff; tasks running when it broke are cancelled (the server has
// already given them to someone else).
//
// The stream lives on a completion queue of the worker's own, which
// `loop` polls while run() serves: run() makes it the loop's poller
// (EventLoop::set_poller) and takes it away when it returns. So messages
// reach handlers and answers are written on the loop thread, with no
// hand-off between threads, but the loop must have no other poller while
// the worker runs (a taskwired server's loop has one: give the worker a
// loop of its own). Assignments and answers travel in batches when both
// sides understand them (workers.proto).
//
// All methods are called on the loop thread, except stop().
class Worker {
 public:
  using Handler = std::function<Task<Value>(const Value& args, WorkerTaskContext& context)>;
  using BlockingHandler = std::function<Value(const Value& args, const WorkerTaskContext& context)>;

  Worker(EventLoop& loop, WorkerOptions options);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  // Registers a kind before run(). The handler must outlive the tasks it
  // starts, which the worker ensures by keeping it.
  void handle(std::string kind, Handler handler);
  // A plain function, run on the worker's thread pool; its value is handed
  // back to the loop. It may poll context.cancel_requested().
  void handle_blocking(std::string kind, BlockingHandler handler);

  // Serves until stop(): connects, reconnects, runs tasks.
  Task<void> run();
  // Thread-safe: ends run() (tasks still running are cancelled).
  void stop();

  // Set once the server has welcomed the current stream.
  Event& connected() { return connected_; }
  std::uint64_t tasks_done() const noexcept { return tasks_done_; }
  std::uint64_t rejections() const noexcept { return rejections_; }

  class Session;
  class ThreadPool;

 private:
  Task<bool> serve_one_session();
  // From the session, on the loop thread, for each message it reads.
  void on_message(const std::shared_ptr<Session>& session, v1::ServerMessage& message);
  void start_assignment(const std::shared_ptr<Session>& session, v1::Assignment& assignment);
  Task<void> run_assignment(std::shared_ptr<Session> session, v1::Assignment assignment);
  void log(const std::string& text);

  EventLoop& loop_;
  WorkerOptions options_;
  // Declared before the channel and the sessions: it outlives them, and
  // its destructor hands the queue's last events to their tags.
  std::unique_ptr<rpc::OwnedCompletionQueue> poller_;
  std::map<std::string, Handler> handlers_;
  std::unique_ptr<ThreadPool> pool_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  Event connected_;
  Event stop_requested_;
  std::atomic<bool> stopping_{false};
  std::shared_ptr<Session> session_;  // The current stream, if any.
  bool welcomed_ = false;             // By the current stream.
  std::uint64_t tasks_done_ = 0;
  std::uint64_t rejections_ = 0;
};

}  // namespace taskwire::client
