#include "client/worker.h"

#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/errors.h"
#include "core/sleep.h"
#include "core/wait_for.h"
#include "rpc/message_batch.h"
#include "rpc/owed_read.h"

namespace taskwire::client {
namespace {

Duration to_duration(const google::protobuf::Duration& d) {
  return std::chrono::seconds(d.seconds()) + std::chrono::nanoseconds(d.nanos());
}

std::string default_identity() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}

std::string key_of(const v1::TaskToken& token) {
  return token.task_id() + "/" + std::to_string(token.attempt());
}

}  // namespace

// Runs blocking handlers off the loop.
class Worker::ThreadPool {
 public:
  explicit ThreadPool(std::size_t threads) {
    for (std::size_t i = 0; i < std::max<std::size_t>(threads, 1); ++i)
      threads_.emplace_back([this] { serve(); });
  }
  ~ThreadPool() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (auto& thread : threads_) thread.join();
  }
  void submit(std::function<void()> job) {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    ready_.notify_one();
  }

 private:
  void serve() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// One Connect stream on the worker's completion queue, driven from the
// loop thread. One read outstanding at a time, each message read handed
// to the worker at once; the next read starts with the next write, or
// once the loop is idle (rpc::OwedRead), so that its flow-control update
// leaves with the answers, not ahead of them. One write at a time: what
// is sent during a loop pass is written at the start of the next (or once
// the write in flight is done), all together, as one WorkerBatch once the
// server said it takes batches, so the answers of 64 tasks assigned
// together go out as one message. Keeps itself alive until every
// operation it started has come back from the queue, whatever happens to
// the worker.
class Worker::Session final : public std::enable_shared_from_this<Session> {
 public:
  struct Running {
    TaskHandle<void> task;
    std::shared_ptr<WorkerTaskContext::State> context;
  };

  Session(Worker& worker, rpc::OwnedCompletionQueue& queue)
      : worker_(&worker), loop_(worker.loop_), queue_(queue.queue()), poller_(queue.poller()) {}

  void start(v1::WorkerService::Stub& stub, v1::WorkerMessage hello) {
    self_ = shared_from_this();
    pending_.push_back(std::move(hello));
    stream_ = stub.PrepareAsyncConnect(&context_, &queue_);
    ++in_flight_;
    stream_->StartCall(&started_);
  }

  // Loop thread; dropped once the stream is over.
  void send(v1::WorkerMessage message) {
    if (broken_) return;
    pending_.push_back(std::move(message));
    if (started_ok_ && !writing_ && !flush_scheduled_) {
      flush_scheduled_ = true;
      loop_.call_soon([self = shared_from_this()] {
        self->flush_scheduled_ = false;
        if (self->started_ok_ && !self->broken_ && !self->writing_ && !self->pending_.empty())
          self->write_next();
      });
    }
  }
  void cancel() { context_.TryCancel(); }
  // The worker lets go: from now on the session only winds down.
  void detach() { worker_ = nullptr; }

  // Loop thread only.
  bool server_takes_batches = false;
  std::map<std::string, Running> running;
  TaskHandle<void> heartbeats;
  Event ended;  // Set once the stream's status is in.
  grpc::Status status;

 private:
  void on_started(bool ok) {
    --in_flight_;
    if (!ok) {
      finish();
    } else {
      started_ok_ = true;
      read_next();
      if (!pending_.empty()) write_next();
    }
    release_if_over();
  }

  void read_next() {
    ++in_flight_;
    stream_->Read(&incoming_, &read_);
  }

  void on_read(bool ok) {
    --in_flight_;
    if (!ok) {
      finish();  // The stream is over; its status says why.
    } else {
      if (worker_ != nullptr) worker_->on_message(self_, incoming_);
      incoming_.Clear();
      owed_read_.owe();
    }
    release_if_over();
  }

  void on_read_due(bool queue_open) {
    if (owed_read_.due(queue_open)) read_next();
    release_if_over();
  }

  void write_next() {
    writing_ = true;
    rpc::take_next_write(pending_, server_takes_batches, outgoing_);
    ++in_flight_;
    stream_->Write(outgoing_, &written_);
    if (owed_read_.take()) read_next();
  }

  void on_written(bool ok) {
    --in_flight_;
    writing_ = false;
    if (!ok) {
      broken_ = true;  // The read side learns why.
      pending_.clear();
    } else if (!pending_.empty()) {
      write_next();
    }
    release_if_over();
  }

  void finish() {
    broken_ = true;
    pending_.clear();
    ++in_flight_;
    stream_->Finish(&status, &finished_);
  }

  void on_finished(bool) {
    --in_flight_;
    ended.set();
    release_if_over();
  }

  // Last in each handler: may free the session.
  void release_if_over() {
    if (ended.is_set() && in_flight_ == 0 && !owed_read_.deferred()) self_.reset();
  }

  Worker* worker_;
  EventLoop& loop_;
  grpc::CompletionQueue& queue_;
  rpc::CqPoller& poller_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<v1::WorkerMessage, v1::ServerMessage>> stream_;
  std::shared_ptr<Session> self_;  // Until every operation is back.
  v1::ServerMessage incoming_;
  v1::WorkerMessage outgoing_;             // Being written.
  std::deque<v1::WorkerMessage> pending_;  // Waiting for the next write.
  int in_flight_ = 0;
  bool started_ok_ = false;
  bool writing_ = false;
  bool flush_scheduled_ = false;
  bool broken_ = false;
  rpc::MemberTag<Session, &Session::on_started> started_{this};
  rpc::MemberTag<Session, &Session::on_read> read_{this};
  rpc::MemberTag<Session, &Session::on_read_due> read_due_{this};
  rpc::OwedRead owed_read_{poller_, read_due_};
  rpc::MemberTag<Session, &Session::on_written> written_{this};
  rpc::MemberTag<Session, &Session::on_finished> finished_{this};
};

struct WorkerTaskContext::State {
  v1::TaskToken token;
  std::string kind;
  std::atomic<bool> cancel_requested{false};
  EventLoop* loop = nullptr;
  std::weak_ptr<Worker::Session> session;  // Loop thread only.

  // From any thread: the session is the loop thread's.
  void send(v1::WorkerMessage message) {
    if (EventLoop::current() == loop) {
      if (std::shared_ptr<Worker::Session> live = session.lock()) live->send(std::move(message));
      return;
    }
    loop->post([weak = session, message = std::move(message)]() mutable {
      if (std::shared_ptr<Worker::Session> live = weak.lock()) live->send(std::move(message));
    });
  }
};

const std::string& WorkerTaskContext::task_id() const noexcept { return state_->token.task_id(); }
std::uint32_t WorkerTaskContext::attempt() const noexcept { return state_->token.attempt(); }
const std::string& WorkerTaskContext::kind() const noexcept { return state_->kind; }
bool WorkerTaskContext::cancel_requested() const noexcept { return state_->cancel_requested; }

void WorkerTaskContext::heartbeat(Value details) const {
  v1::WorkerMessage message;
  *message.mutable_task_heartbeat()->mutable_token() = state_->token;
  *message.mutable_task_heartbeat()->mutable_details() = std::move(details);
  state_->send(std::move(message));
}
void WorkerTaskContext::heartbeat() const {
  v1::WorkerMessage message;
  *message.mutable_task_heartbeat()->mutable_token() = state_->token;
  state_->send(std::move(message));
}

Worker::Worker(EventLoop& loop, WorkerOptions options)
    : loop_(loop),
      options_(std::move(options)),
      poller_(std::make_unique<rpc::OwnedCompletionQueue>()) {
  if (options_.target.empty()) {
    const char* env = std::getenv("TASKWIRE_SERVER");
    options_.target = env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";
  }
  if (options_.identity.empty()) options_.identity = default_identity();
  channel_ = grpc::CreateChannel(options_.target, grpc::InsecureChannelCredentials());
  stub_ = v1::WorkerService::NewStub(channel_);
}

Worker::~Worker() = default;

void Worker::handle(std::string kind, Handler handler) {
  handlers_[std::move(kind)] = std::move(handler);
}

namespace {

// A blocking handler's call, shared by the loop and a pool thread: the
// loop may stop waiting (cancellation) while the thread still runs.
struct BlockingCall {
  explicit BlockingCall(WorkerTaskContext context) : context(std::move(context)) {}
  Value args;
  WorkerTaskContext context;
  Worker::BlockingHandler handler;
  Value result;
  std::exception_ptr error;
  Event done;  // Loop thread only.
};

}  // namespace

void Worker::handle_blocking(std::string kind, BlockingHandler handler) {
  if (!pool_) pool_ = std::make_unique<ThreadPool>(options_.blocking_threads);
  handle(std::move(kind),
         [this, handler = std::move(handler)](const Value& args,
                                              WorkerTaskContext& context) -> Task<Value> {
           auto call = std::make_shared<BlockingCall>(context);
           call->args = args;
           call->handler = handler;
           EventLoop* loop = &loop_;
           pool_->submit([call, loop] {
             try {
               call->result = call->handler(call->args, call->context);
             } catch (...) {
               call->error = std::current_exception();
             }
             loop->post([call] { call->done.set(); });
           });
           co_await call->done.wait();
           if (call->error) std::rethrow_exception(call->error);
           co_return std::move(call->result);
         });
}

void Worker::stop() {
  stopping_ = true;
  loop_.post([this] {
    stop_requested_.set();
    if (session_) session_->cancel();
  });
}

void Worker::log(const std::string& text) {
  if (options_.log) {
    options_.log(text);
  } else {
    std::fprintf(stderr, "worker %s: %s\n", options_.identity.c_str(), text.c_str());
  }
}

Task<void> Worker::run() {
  // The loop polls the stream's queue while the worker serves.
  struct PollerInstalled {
    EventLoop& loop;
    ~PollerInstalled() { loop.set_poller(nullptr); }
  } installed{loop_};
  loop_.set_poller(&poller_->poller());
  Duration delay = options_.initial_reconnect_delay;
  while (!stopping_) {
    bool welcomed = co_await serve_one_session();
    if (stopping_) break;
    if (welcomed) delay = options_.initial_reconnect_delay;
    bool stopped = true;
    try {
      co_await wait_for(stop_requested_.wait(), delay);
    } catch (const TimeoutError&) {
      stopped = false;
    }
    if (stopped) break;
    delay = std::min(delay * 2, options_.max_reconnect_delay);
  }
}

namespace {

Task<void> send_heartbeats(std::weak_ptr<Worker::Session> weak, Duration interval) {
  for (;;) {
    co_await sleep(interval);
    std::shared_ptr<Worker::Session> session = weak.lock();
    if (!session) co_return;
    v1::WorkerMessage beat;
    beat.mutable_heartbeat();
    session->send(std::move(beat));
  }
}

}  // namespace

Task<bool> Worker::serve_one_session() {
  auto session = std::make_shared<Session>(*this, *poller_);
  session_ = session;
  v1::WorkerMessage hello;
  hello.mutable_hello()->set_identity(options_.identity);
  for (const auto& [kind, handler] : handlers_) hello.mutable_hello()->add_kinds(kind);
  hello.mutable_hello()->set_credits(options_.credits);
  hello.mutable_hello()->set_batches(true);
  session->start(*stub_, std::move(hello));
  welcomed_ = false;

  bool cancelled = false;
  try {
    co_await session->ended.wait();
  } catch (const CancelledError&) {
    cancelled = true;
  }
  // However the stream ended, its tasks end with it; it is over once its
  // status is in.
  session->cancel();
  if (session->heartbeats.valid()) session->heartbeats.cancel();
  for (auto& [key, running] : session->running) {
    running.context->cancel_requested = true;
    running.task.cancel();
  }
  connected_.clear();
  if (session_ == session) session_.reset();
  co_await session->ended.wait();
  if (!stopping_ && !cancelled) {
    log("stream ended: " + std::to_string(session->status.error_code()) + " " +
        session->status.error_message());
  }
  session->detach();
  if (cancelled) throw CancelledError();
  co_return welcomed_;
}

void Worker::on_message(const std::shared_ptr<Session>& session, v1::ServerMessage& message) {
  switch (message.message_case()) {
    case v1::ServerMessage::kWelcome: {
      welcomed_ = true;
      session->server_takes_batches = message.welcome().batches();
      Duration interval = to_duration(message.welcome().heartbeat_interval());
      if (interval <= Duration::zero()) interval = std::chrono::seconds(2);
      session->heartbeats = loop_.create_task(send_heartbeats(session, interval));
      connected_.set();
      break;
    }
    case v1::ServerMessage::kAssignment:
      start_assignment(session, *message.mutable_assignment());
      break;
    case v1::ServerMessage::kCancel: {
      auto it = session->running.find(key_of(message.cancel().token()));
      if (it != session->running.end()) {
        it->second.context->cancel_requested = true;
        it->second.task.cancel();
      }
      break;
    }
    case v1::ServerMessage::kRejection:
      ++rejections_;
      log("rejected: " + message.rejection().field() + ": " + message.rejection().reason());
      break;
    case v1::ServerMessage::kBatch:
      for (v1::ServerMessage& inner : *message.mutable_batch()->mutable_messages()) {
        if (!inner.has_batch()) on_message(session, inner);
      }
      break;
    default:
      break;
  }
}

void Worker::start_assignment(const std::shared_ptr<Session>& session, v1::Assignment& assignment) {
  std::string key = key_of(assignment.token());
  auto context = std::make_shared<WorkerTaskContext::State>();
  context->token = assignment.token();
  context->kind = assignment.kind();
  context->loop = &loop_;
  context->session = session;
  Session::Running& running = session->running[std::move(key)];
  running.context = std::move(context);
  running.task = loop_.create_task(run_assignment(session, std::move(assignment)));
}

Task<void> Worker::run_assignment(std::shared_ptr<Session> session, v1::Assignment assignment) {
  const std::string key = key_of(assignment.token());
  std::shared_ptr<WorkerTaskContext::State> state = session->running.at(key).context;
  WorkerTaskContext context(state);
  v1::WorkerMessage answer;
  bool succeeded = false;
  Value result;
  std::string type;
  std::string text;
  bool non_retryable = false;
  bool cancelled = false;
  auto handler = handlers_.find(assignment.kind());
  if (handler == handlers_.end()) {
    type = "UnknownKind";
    text = "this worker has no handler for kind '" + assignment.kind() + "'";
    non_retryable = true;
  } else {
    try {
      result = co_await handler->second(assignment.args(), context);
      succeeded = true;
    } catch (const CancelledError&) {
      cancelled = true;
    } catch (const HandlerError& e) {
      type = e.type();
      text = e.what();
      non_retryable = e.non_retryable();
    } catch (const std::exception& e) {
      type = "Error";
      text = e.what();
    } catch (...) {
      type = "Error";
      text = "unknown exception";
    }
  }
  if (succeeded) {
    *answer.mutable_result()->mutable_token() = assignment.token();
    *answer.mutable_result()->mutable_result() = std::move(result);
  } else {
    v1::TaskFailure* failure = answer.mutable_failure();
    *failure->mutable_token() = assignment.token();
    failure->set_type(cancelled ? "CancelledError" : type);
    failure->set_message(cancelled ? "cancelled" : text);
    failure->set_non_retryable(non_retryable);
    failure->set_cancelled(cancelled);
  }
  session->send(std::move(answer));
  session->running.erase(key);
  ++tasks_done_;
}

}  // namespace taskwire::client
