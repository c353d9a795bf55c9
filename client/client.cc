#include "client/client.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "client/errors.h"
#include "client/rpc_call.h"
#include "core/sleep.h"

namespace taskwire::client {
namespace {

using Async = v1::TaskService::StubInterface::async_interface;
template <typename Request, typename Response>
using AsyncMethod = void (Async::*)(grpc::ClientContext*, const Request*, Response*,
                                    std::function<void(grpc::Status)>);

constexpr char kDefaultTarget[] = "127.0.0.1:50051";
// How long one AwaitTask waits on the server before the client asks again.
constexpr auto kLongPoll = std::chrono::seconds(50);

std::string resolve_target(const std::string& target) {
  if (!target.empty()) return target;
  const char* env = std::getenv("TASKWIRE_SERVER");
  return env != nullptr && *env != '\0' ? env : kDefaultTarget;
}

std::string random_key() {
  static thread_local std::mt19937_64 random(std::random_device{}());
  char text[40];
  std::snprintf(text, sizeof text, "tw-%016llx%016llx", static_cast<unsigned long long>(random()),
                static_cast<unsigned long long>(random()));
  return text;
}

void set_duration(Duration d, google::protobuf::Duration* out) {
  auto nanos = d.count();
  out->set_seconds(nanos / 1'000'000'000);
  out->set_nanos(static_cast<int>(nanos % 1'000'000'000));
}

bool finished(const v1::Task& task) {
  return task.state() == v1::TASK_STATE_SUCCEEDED || task.state() == v1::TASK_STATE_FAILED ||
         task.state() == v1::TASK_STATE_CANCELLED;
}

// A finished task's outcome: its value, or the remote error thrown.
Value outcome(const v1::Task& task) {
  switch (task.state()) {
    case v1::TASK_STATE_SUCCEEDED:
      return task.result();
    case v1::TASK_STATE_CANCELLED:
      throw CancelledError();
    default:
      throw RemoteTaskError(task.id(), task.error().type(), task.error().message());
  }
}

}  // namespace

class Client::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(EventLoop& loop, ClientOptions options) : loop_(loop), options_(std::move(options)) {
    options_.target = resolve_target(options_.target);
    auto credentials =
        options_.credentials ? options_.credentials : grpc::InsecureChannelCredentials();
    options_.channel_arguments.SetMaxReceiveMessageSize(64 * 1024 * 1024);
    options_.channel_arguments.SetMaxSendMessageSize(64 * 1024 * 1024);
    channel_ = grpc::CreateCustomChannel(options_.target, credentials, options_.channel_arguments);
    stub_ = v1::TaskService::NewStub(channel_);
  }

  const std::string& target() const { return options_.target; }

  // A unary call; idempotent ones are retried on UNAVAILABLE with backoff.
  template <typename Request, typename Response>
  Task<Response> unary(AsyncMethod<Request, Response> method, Request request, bool idempotent,
                       std::optional<Duration> timeout, OnCancel on_cancel = OnCancel::kAbandon) {
    Duration backoff = options_.initial_backoff;
    for (int attempt = 1;; ++attempt) {
      RpcCall<Request, Response> call(
          [stub = stub_.get(), method](grpc::ClientContext* context, const Request* req,
                                       Response* resp, std::function<void(grpc::Status)> done) {
            (stub->async()->*method)(context, req, resp, std::move(done));
          },
          request, timeout, on_cancel);
      try {
        co_return co_await call;
      } catch (const ServerUnavailable&) {
        if (!idempotent || attempt >= options_.max_attempts) throw;
      }
      co_await sleep(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }

  RemoteTask create_task(std::string kind, Value args, TaskOptions options) {
    auto state = std::make_shared<detail::RemoteState>();
    v1::CreateTaskRequest request;
    request.set_kind(std::move(kind));
    if (args.kind_case() != Value::KIND_NOT_SET) *request.mutable_args() = std::move(args);
    request.set_name(options.name);
    request.mutable_labels()->insert(options.labels.begin(), options.labels.end());
    if (options.timeout) set_duration(*options.timeout, request.mutable_timeout());
    request.set_idempotency_key(options.idempotency_key.empty() ? random_key()
                                                                : options.idempotency_key);
    batch_.push_back({state, std::move(request)});
    if (!flush_scheduled_) {
      flush_scheduled_ = true;
      loop_.call_soon([self = shared_from_this()] { self->flush(); });
    }
    return RemoteTask(state, loop_.create_task(follow(state)));
  }

  Task<v1::Task> get(std::string id) {
    v1::GetTaskRequest request;
    request.set_id(std::move(id));
    co_return co_await unary(
        static_cast<AsyncMethod<v1::GetTaskRequest, v1::Task>>(&Async::GetTask), std::move(request),
        true, options_.call_timeout);
  }

  Task<v1::Task> cancel(std::string id) {
    v1::CancelTaskRequest request;
    request.set_id(std::move(id));
    co_return co_await unary(
        static_cast<AsyncMethod<v1::CancelTaskRequest, v1::Task>>(&Async::CancelTask),
        std::move(request), true, options_.call_timeout, OnCancel::kFinishFirst);
  }

  Task<v1::ListTasksResponse> list(v1::ListTasksRequest request) {
    co_return co_await unary(
        static_cast<AsyncMethod<v1::ListTasksRequest, v1::ListTasksResponse>>(&Async::ListTasks),
        std::move(request), true, options_.call_timeout);
  }

  Task<Value> run(std::string kind, Value args, TaskOptions options) {
    v1::RunTaskRequest request;
    request.mutable_task()->set_kind(std::move(kind));
    if (args.kind_case() != Value::KIND_NOT_SET)
      *request.mutable_task()->mutable_args() = std::move(args);
    request.mutable_task()->set_name(options.name);
    request.mutable_task()->mutable_labels()->insert(options.labels.begin(), options.labels.end());
    if (options.timeout) set_duration(*options.timeout, request.mutable_task()->mutable_timeout());
    request.set_view(v1::TASK_VIEW_OUTCOME);
    v1::AwaitTaskResponse response = co_await unary(
        static_cast<AsyncMethod<v1::RunTaskRequest, v1::AwaitTaskResponse>>(&Async::RunTask),
        std::move(request), false, std::nullopt);
    co_return outcome(response.task());
  }

 private:
  struct Pending {
    std::shared_ptr<detail::RemoteState> state;
    v1::CreateTaskRequest request;
  };

  // Sends the tasks created during the last pass, in chunks.
  void flush() {
    flush_scheduled_ = false;
    std::vector<Pending> all = std::move(batch_);
    batch_.clear();
    for (std::size_t begin = 0; begin < all.size(); begin += options_.max_batch) {
      std::size_t end = std::min(all.size(), begin + options_.max_batch);
      std::vector<Pending> chunk(std::make_move_iterator(all.begin() + begin),
                                 std::make_move_iterator(all.begin() + end));
      loop_.create_task(send(std::move(chunk)));
    }
  }

  Task<void> send(std::vector<Pending> chunk) {
    std::vector<std::shared_ptr<detail::RemoteState>> unfinished;
    {
      v1::CreateTasksRequest request;
      for (auto& pending : chunk) *request.add_tasks() = pending.request;
      request.set_view(v1::TASK_VIEW_OUTCOME);
      std::exception_ptr error;
      v1::CreateTasksResponse response;
      try {
        // Idempotency keys make the retry of a creation safe.
        response = co_await unary(
            static_cast<AsyncMethod<v1::CreateTasksRequest, v1::CreateTasksResponse>>(
                &Async::CreateTasks),
            std::move(request), true, options_.call_timeout, OnCancel::kFinishFirst);
      } catch (...) {
        error = std::current_exception();
      }
      if (error && chunk.size() > 1) {
        // One bad task rejects the batch: send them one by one, so that only
        // the bad ones fail.
        for (auto& pending : chunk) {
          std::vector<Pending> one;
          one.push_back(std::move(pending));
          loop_.create_task(send(std::move(one)));
        }
        co_return;
      }
      for (std::size_t i = 0; i < chunk.size(); ++i) {
        auto& state = *chunk[i].state;
        if (error) {
          state.creation_error = error;
          state.finished.set();
        } else {
          const v1::Task& task = response.tasks(static_cast<int>(i));
          state.id = task.id();
          if (finished(task))
            resolve(state, task);
          else
            unfinished.push_back(chunk[i].state);
        }
        state.created.set();
      }
    }
    // Neither the requests nor the answer (every task in full) are needed
    // while the tasks are followed, which can be long.
    std::vector<Pending>().swap(chunk);
    if (!unfinished.empty()) co_await follow_batch(std::move(unfinished));
  }

  // One AsCompleted stream tells every task of a batch when it finishes; if
  // the stream breaks, the tasks not yet finished are followed again.
  Task<void> follow_batch(std::vector<std::shared_ptr<detail::RemoteState>> states) {
    // Keyed by views of the states' ids: `states` keeps them alive.
    std::unordered_map<std::string_view, detail::RemoteState*> by_id;
    for (auto& state : states) {
      if (!state->final) by_id.emplace(state->id, state.get());
    }
    Duration backoff = options_.initial_backoff;
    for (int attempt = 1; !by_id.empty(); ++attempt) {
      v1::AsCompletedRequest request;
      for (const auto& [id, state] : by_id) request.add_ids(std::string(id));
      request.set_view(v1::TASK_VIEW_OUTCOME);
      grpc::Status status =
          co_await stream_completions(std::move(request), [&](const v1::Task& task) {
            auto it = by_id.find(task.id());
            if (it == by_id.end()) return;
            resolve(*it->second, task);
            by_id.erase(it);
          });
      if (by_id.empty()) break;
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE ||
          attempt >= options_.max_attempts) {
        for (auto& [id, state] : by_id) {
          state->creation_error = std::make_exception_ptr(RpcError(status));
          state->finished.set();
        }
        break;
      }
      co_await sleep(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }

  static void resolve(detail::RemoteState& state, const v1::Task& task) {
    if (state.final) return;
    state.final = task;
    state.finished.set();
  }

  // Reads an AsCompleted stream, calling `on_task` on the loop for each
  // task; completes with the stream's status.
  Task<grpc::Status> stream_completions(v1::AsCompletedRequest request,
                                        std::function<void(const v1::Task&)> on_task);

  // The local task behind a RemoteTask.
  Task<Value> follow(std::shared_ptr<detail::RemoteState> state) {
    bool cancelled = false;
    try {
      co_await state->finished.wait();
    } catch (const CancelledError&) {
      cancelled = true;
    }
    if (cancelled) {
      // Asked to stop: stop the remote task too, and report how it ended.
      state->cancel_requested = true;
      co_await state->created.wait();
      if (state->creation_error) std::rethrow_exception(state->creation_error);
      if (!state->final) resolve(*state, co_await cancel(state->id));
    }
    if (!state->final) std::rethrow_exception(state->creation_error);
    co_return outcome(*state->final);
  }

  EventLoop& loop_;
  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TaskService::Stub> stub_;
  std::vector<Pending> batch_;
  bool flush_scheduled_ = false;
};

namespace {

// Reads one server stream with gRPC's callback API: each message is handed
// to the loop; the end of the stream completes the awaiting task.
class CompletionReader final : public grpc::ClientReadReactor<v1::Task> {
 public:
  struct Shared {
    std::function<void(const v1::Task&)> on_task;  // Loop thread only.
    grpc::Status status;                           // Loop thread only.
    Event done;                                    // Loop thread only.
    std::mutex mutex;
    std::vector<v1::Task> arrived;  // Guarded by mutex; handed over in bulk.
    bool delivery_posted = false;   // Guarded by mutex.

    // On the loop: hands what has arrived to on_task.
    void deliver() {
      std::vector<v1::Task> tasks;
      {
        std::lock_guard lock(mutex);
        tasks.swap(arrived);
        delivery_posted = false;
      }
      for (const auto& task : tasks) on_task(task);
    }
  };

  CompletionReader(EventLoop& loop, std::shared_ptr<Shared> shared)
      : loop_(loop), shared_(std::move(shared)) {}

  void start(v1::TaskService::Stub* stub, v1::AsCompletedRequest request) {
    request_ = std::move(request);
    stub->async()->AsCompleted(&context_, &request_, this);
    StartRead(&message_);
    StartCall();
  }
  void cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // The stream is over; OnDone follows.
    bool post;
    {
      // Messages arriving while the loop is busy go over in one hand-off.
      std::lock_guard lock(shared_->mutex);
      shared_->arrived.push_back(std::move(message_));
      post = !std::exchange(shared_->delivery_posted, true);
    }
    if (post) loop_.post([shared = shared_] { shared->deliver(); });
    StartRead(&message_);
  }
  // The reader belongs to the coroutine that awaits `done`, and gRPC
  // touches it no more once this returns.
  void OnDone(const grpc::Status& status) override {
    loop_.post([shared = shared_, status] {
      shared->deliver();
      shared->status = status;
      shared->done.set();
    });
  }

 private:
  EventLoop& loop_;
  std::shared_ptr<Shared> shared_;
  grpc::ClientContext context_;
  v1::AsCompletedRequest request_;
  v1::Task message_;
};

}  // namespace

Task<grpc::Status> Client::Impl::stream_completions(v1::AsCompletedRequest request,
                                                    std::function<void(const v1::Task&)> on_task) {
  auto shared = std::make_shared<CompletionReader::Shared>();
  shared->on_task = std::move(on_task);
  auto reader = std::make_unique<CompletionReader>(loop_, shared);
  reader->start(stub_.get(), std::move(request));
  bool cancelled = false;
  try {
    co_await shared->done.wait();
  } catch (const CancelledError&) {
    cancelled = true;
  }
  if (cancelled) {
    // Stop the stream, and wait for gRPC to say it has stopped: the
    // callback must not outlive what it calls.
    reader->cancel();
    co_await shared->done.wait();
    throw CancelledError();
  }
  co_return shared->status;
}

Client::Client(EventLoop& loop, ClientOptions options)
    : impl_(std::make_shared<Impl>(loop, std::move(options))) {}
Client::Client(EventLoop& loop) : Client(loop, ClientOptions()) {}
Client::~Client() = default;
const std::string& Client::target() const noexcept { return impl_->target(); }
RemoteTask Client::create_task(std::string kind, Value args, TaskOptions options) {
  return impl_->create_task(std::move(kind), std::move(args), std::move(options));
}
RemoteTask Client::create_task(std::string kind, Value args) {
  return create_task(std::move(kind), std::move(args), TaskOptions());
}
RemoteTask Client::create_task(std::string kind) {
  return create_task(std::move(kind), Value(), TaskOptions());
}
Task<Value> Client::run(std::string kind, Value args, TaskOptions options) {
  return impl_->run(std::move(kind), std::move(args), std::move(options));
}
Task<Value> Client::run(std::string kind, Value args) {
  return run(std::move(kind), std::move(args), TaskOptions());
}
Task<v1::Task> Client::get(std::string id) { return impl_->get(std::move(id)); }
Task<v1::Task> Client::cancel(std::string id) { return impl_->cancel(std::move(id)); }
Task<v1::ListTasksResponse> Client::list(v1::ListTasksRequest request) {
  return impl_->list(std::move(request));
}

Value json_value(const std::string& json) {
  Value value;
  auto status = google::protobuf::util::JsonStringToMessage(json, &value);
  if (!status.ok()) throw std::invalid_argument("not JSON: " + json);
  return value;
}

std::string to_json(const Value& value) {
  std::string text;
  (void)google::protobuf::util::MessageToJsonString(value, &text);
  return text;
}

}  // namespace taskwire::client
