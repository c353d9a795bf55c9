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
#include "core/queue.h"
#include "core/sleep.h"
#include "core/wait_for.h"

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

// One Connect stream. gRPC's threads read and write; what is read is
// handed to the loop's inbox. Keeps itself alive until gRPC is done with
// it, whatever happens to the loop side.
class Worker::Session final : public grpc::ClientBidiReactor<v1::WorkerMessage, v1::ServerMessage>,
                              public std::enable_shared_from_this<Session> {
 public:
  // nullopt ends the stream, with `status`.
  struct Item {
    std::optional<v1::ServerMessage> message;
    grpc::Status status;
  };
  struct Running {
    TaskHandle<void> task;
    std::shared_ptr<WorkerTaskContext::State> context;
  };

  explicit Session(EventLoop& loop) : loop_(loop) {}

  void start(v1::WorkerService::Stub& stub, const v1::WorkerMessage& hello) {
    self_ = shared_from_this();
    stub.async()->Connect(&context_, this);
    send(hello);
    StartRead(&incoming_);
    StartCall();
  }

  // Thread-safe; dropped once the stream is over.
  void send(const v1::WorkerMessage& message) {
    std::lock_guard lock(mutex_);
    if (done_) return;
    queue_.push_back(message);
    if (!writing_) {
      writing_ = true;
      StartWrite(&queue_.front());
    }
  }
  void cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows with the status.
    loop_.post([self = shared_from_this(), message = std::move(incoming_)]() mutable {
      self->inbox.put_nowait(Item{std::move(message), grpc::Status::OK});
    });
    incoming_.Clear();
    StartRead(&incoming_);
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mutex_);
    queue_.pop_front();
    if (ok && !queue_.empty()) {
      StartWrite(&queue_.front());
    } else {
      writing_ = false;
      if (!ok) queue_.clear();
    }
  }
  void OnDone(const grpc::Status& status) override {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    // The session (its ClientContext, and through it maybe the channel's
    // last reference) is released on the loop thread: a channel destroyed
    // on one of gRPC's callback threads frees the callback queue that
    // thread is still polling.
    loop_.post([self = std::move(self_), status] {
      self->inbox.put_nowait(Item{std::nullopt, status});
    });
  }

  // Loop thread only.
  Queue<Item> inbox;
  std::map<std::string, Running> running;

 private:
  EventLoop& loop_;
  grpc::ClientContext context_;
  v1::ServerMessage incoming_;
  std::shared_ptr<Session> self_;  // Until OnDone.
  std::mutex mutex_;
  std::deque<v1::WorkerMessage> queue_;  // queue_.front() is being written.
  bool writing_ = false;
  bool done_ = false;
};

struct WorkerTaskContext::State {
  v1::TaskToken token;
  std::string kind;
  std::atomic<bool> cancel_requested{false};
  std::weak_ptr<Worker::Session> session;
};

const std::string& WorkerTaskContext::task_id() const noexcept { return state_->token.task_id(); }
std::uint32_t WorkerTaskContext::attempt() const noexcept { return state_->token.attempt(); }
const std::string& WorkerTaskContext::kind() const noexcept { return state_->kind; }
bool WorkerTaskContext::cancel_requested() const noexcept { return state_->cancel_requested; }

void WorkerTaskContext::heartbeat(Value details) const {
  std::shared_ptr<Worker::Session> session = state_->session.lock();
  if (!session) return;
  v1::WorkerMessage message;
  *message.mutable_task_heartbeat()->mutable_token() = state_->token;
  *message.mutable_task_heartbeat()->mutable_details() = std::move(details);
  session->send(message);
}
void WorkerTaskContext::heartbeat() const {
  std::shared_ptr<Worker::Session> session = state_->session.lock();
  if (!session) return;
  v1::WorkerMessage message;
  *message.mutable_task_heartbeat()->mutable_token() = state_->token;
  session->send(message);
}

Worker::Worker(EventLoop& loop, WorkerOptions options) : loop_(loop), options_(std::move(options)) {
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

Task<void> send_heartbeats(std::shared_ptr<Worker::Session> session, Duration interval) {
  v1::WorkerMessage beat;
  beat.mutable_heartbeat();
  for (;;) {
    co_await sleep(interval);
    session->send(beat);
  }
}

}  // namespace

Task<bool> Worker::serve_one_session() {
  auto session = std::make_shared<Session>(loop_);
  session_ = session;
  v1::WorkerMessage hello;
  hello.mutable_hello()->set_identity(options_.identity);
  for (const auto& [kind, handler] : handlers_) hello.mutable_hello()->add_kinds(kind);
  hello.mutable_hello()->set_credits(options_.credits);
  session->start(*stub_, hello);

  // However this coroutine ends, the stream and its tasks end with it.
  struct EndSession {
    Worker* worker;
    std::shared_ptr<Session> session;
    TaskHandle<void> heartbeats;
    ~EndSession() {
      session->cancel();
      if (heartbeats.valid()) heartbeats.cancel();
      for (auto& [key, running] : session->running) {
        running.context->cancel_requested = true;
        running.task.cancel();
      }
      worker->connected_.clear();
      if (worker->session_ == session) worker->session_.reset();
    }
  } end{this, session, {}};

  bool welcomed = false;
  for (;;) {
    Session::Item item = co_await session->inbox.get();
    if (!item.message) {
      if (!stopping_) {
        log("stream ended: " + std::to_string(item.status.error_code()) + " " +
            item.status.error_message());
      }
      break;
    }
    const v1::ServerMessage& message = *item.message;
    switch (message.message_case()) {
      case v1::ServerMessage::kWelcome: {
        welcomed = true;
        Duration interval = to_duration(message.welcome().heartbeat_interval());
        if (interval <= Duration::zero()) interval = std::chrono::seconds(2);
        end.heartbeats = loop_.create_task(send_heartbeats(session, interval));
        connected_.set();
        break;
      }
      case v1::ServerMessage::kAssignment: {
        v1::Assignment assignment = message.assignment();
        std::string key = key_of(assignment.token());
        auto context = std::make_shared<WorkerTaskContext::State>();
        context->token = assignment.token();
        context->kind = assignment.kind();
        context->session = session;
        Session::Running& running = session->running[key];
        running.context = context;
        running.task = loop_.create_task(run_assignment(session, std::move(assignment)));
        break;
      }
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
      default:
        break;
    }
  }
  co_return welcomed;
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
  session->send(answer);
  session->running.erase(key);
  ++tasks_done_;
}

}  // namespace taskwire::client
