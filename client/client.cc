#include "client/client.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string_view>

#include "client/errors.h"
#include "client/rpc_call.h"
#include "core/errors.h"
#include "core/event.h"
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

// A prefix that makes this client's idempotency keys its own: 64 random
// bits, drawn once per client.
std::string random_key_prefix() {
  std::mt19937_64 random(std::random_device{}());
  char text[24];
  std::snprintf(text, sizeof text, "tw-%016llx-", static_cast<unsigned long long>(random()));
  return text;
}

// prefix + `n` in hex: unique per client, and cheap to make per task.
void append_key(std::string& out, const std::string& prefix, std::uint64_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  char digits[16];
  int count = 0;
  do {
    digits[count++] = kHex[n & 0xf];
    n >>= 4;
  } while (n != 0);
  out.reserve(prefix.size() + static_cast<std::size_t>(count));
  out.assign(prefix);
  while (count > 0) out.push_back(digits[--count]);
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

// Completes a remote task's future with the outcome the server sent; `task`
// is left without its result (moved out). Does nothing if already done.
void resolve(detail::RemoteState& state, v1::Task& task) {
  if (state.done()) return;
  state.remote.attempt =
      static_cast<std::uint16_t>(std::min<std::uint32_t>(task.attempt(), 0xffff));
  state.remote.remote_state = static_cast<std::uint8_t>(task.state());
  switch (task.state()) {
    case v1::TASK_STATE_SUCCEEDED:
      state.set_result(std::move(*task.mutable_result()));
      break;
    case v1::TASK_STATE_CANCELLED:
      state.set_cancelled();
      break;
    default:
      state.set_exception(std::make_exception_ptr(
          RemoteTaskError(task.id(), task.error().type(), task.error().message())));
  }
}

detail::RemoteState& remote_state(const TaskHandle<Value>& handle) {
  return static_cast<detail::RemoteState&>(*handle.state());
}

}  // namespace

namespace detail {

// One CreateTasks call's tasks: the request while it is being built and
// sent, then the tasks still running, followed on one AsCompleted stream.
// Alive while any of its tasks is pending (its send task holds it).
class Batch : public std::enable_shared_from_this<Batch> {
 public:
  explicit Batch(Client::Impl& owner) : impl(owner) {}

  Client::Impl& impl;
  v1::CreateTasksRequest request;
  // In request order until created; then the unfinished ones, sorted by id
  // (kept until the batch ends, finished or not, so the order holds).
  std::vector<TaskHandle<Value>> tasks;
  Event created;  // The creation call has answered (or failed).
};

}  // namespace detail

class Client::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(EventLoop& loop, ClientOptions options)
      : loop_(loop), options_(std::move(options)), key_prefix_(random_key_prefix()) {
    options_.target = resolve_target(options_.target);
    auto credentials =
        options_.credentials ? options_.credentials : grpc::InsecureChannelCredentials();
    options_.channel_arguments.SetMaxReceiveMessageSize(64 * 1024 * 1024);
    options_.channel_arguments.SetMaxSendMessageSize(64 * 1024 * 1024);
    channel_ = grpc::CreateCustomChannel(options_.target, credentials, options_.channel_arguments);
    stub_ = v1::TaskService::NewStub(channel_);
    if (options_.max_batch == 0) options_.max_batch = 1;
    if (options_.max_calls_in_flight < 1) options_.max_calls_in_flight = 1;
  }

  const std::string& target() const { return options_.target; }
  const ClientStats& stats() const { return stats_; }

  // A unary call; idempotent ones are retried on UNAVAILABLE with backoff.
  // `request` is the caller's, and outlives the awaited call.
  // `attempts_made`: attempts already made elsewhere (they count towards
  // max_attempts).
  template <typename Request, typename Response>
  Task<Response> unary(AsyncMethod<Request, Response> method, const Request& request,
                       bool idempotent, std::optional<Duration> timeout,
                       OnCancel on_cancel = OnCancel::kAbandon, int attempts_made = 0) {
    Duration backoff = options_.initial_backoff;
    for (int i = 0; i < attempts_made; ++i) backoff = std::min(backoff * 2, options_.max_backoff);
    for (int attempt = attempts_made + 1;; ++attempt) {
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
    auto* state = new detail::RemoteState(loop_);
    TaskHandle<Value> handle(state);
    if (!pending_) {
      pending_ = std::make_shared<detail::Batch>(*this);
      pending_limit_ = next_batch_limit();
    }
    v1::CreateTaskRequest& request = *pending_->request.add_tasks();
    request.set_kind(std::move(kind));
    if (args.kind_case() != Value::KIND_NOT_SET) *request.mutable_args() = std::move(args);
    if (!options.name.empty()) request.set_name(std::move(options.name));
    if (!options.labels.empty())
      request.mutable_labels()->insert(options.labels.begin(), options.labels.end());
    if (options.timeout) set_duration(*options.timeout, request.mutable_timeout());
    // Without a key of its own, a task is kept single by its call's key
    // (see launch()).
    if (!options.idempotency_key.empty())
      request.set_idempotency_key(std::move(options.idempotency_key));
    state->batch = pending_.get();
    pending_->tasks.push_back(handle);
    if (pending_->tasks.size() >= pending_limit_) {
      // A full batch goes at once, even mid-pass, so that the server creates
      // it while the caller creates the next.
      send_pending();
    } else if (!flush_scheduled_) {
      flush_scheduled_ = true;
      loop_.call_soon([self = shared_from_this()] { self->flush(); });
    }
    return RemoteTask(std::move(handle));
  }

  // The remote half of RemoteState::on_cancel_requested, once it has an id.
  void cancel_remote(detail::RemoteState& state) {
    loop_.create_task(cancel_and_resolve(shared_from_this(), TaskHandle<Value>(&state)));
  }

  Task<v1::Task> get(std::string id) {
    v1::GetTaskRequest request;
    request.set_id(std::move(id));
    co_return co_await unary(
        static_cast<AsyncMethod<v1::GetTaskRequest, v1::Task>>(&Async::GetTask), request, true,
        options_.call_timeout);
  }

  Task<v1::Task> cancel(std::string id) {
    v1::CancelTaskRequest request;
    request.set_id(std::move(id));
    co_return co_await unary(
        static_cast<AsyncMethod<v1::CancelTaskRequest, v1::Task>>(&Async::CancelTask), request,
        true, options_.call_timeout, OnCancel::kFinishFirst);
  }

  Task<v1::ListTasksResponse> list(v1::ListTasksRequest request) {
    co_return co_await unary(
        static_cast<AsyncMethod<v1::ListTasksRequest, v1::ListTasksResponse>>(&Async::ListTasks),
        request, true, options_.call_timeout);
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
        request, false, std::nullopt);
    co_return outcome(response.task());
  }

 private:
  // End of the pass that created tasks: send them unless enough calls are
  // in flight already, in which case the first to answer sends them.
  void flush() {
    flush_scheduled_ = false;
    if (pending_ && calls_in_flight_ < options_.max_calls_in_flight) send_pending();
  }

  // The size at which the batch being started goes at once (see
  // ClientOptions::first_batch).
  std::size_t next_batch_limit() {
    std::size_t limit = calls_in_flight_ == 0 ? options_.first_batch : pending_limit_ * 2;
    return limit == 0 ? options_.max_batch : std::min(limit, options_.max_batch);
  }

  void send_pending() {
    std::shared_ptr<detail::Batch> batch = std::move(pending_);
    pending_.reset();
    launch(std::move(batch));
  }

  // Starts a batch's CreateTasks call now, not on the loop's next pass as
  // a new task's first step would: a batch filled mid-pass (a loop creating
  // 100,000 tasks) is then created by the server while the caller goes on.
  void launch(std::shared_ptr<detail::Batch> batch) {
    set_keys(batch->request);
    ++calls_in_flight_;
    stats_.create_calls++;
    stats_.created_tasks += batch->tasks.size();
    batch->request.set_view(v1::TASK_VIEW_OUTCOME);
    auto call = std::make_shared<StartedCreate>();
    call->loop = &loop_;
    call->context.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::duration_cast<std::chrono::system_clock::duration>(options_.call_timeout));
    stub_->async()->CreateTasks(
        &call->context, &batch->request, &call->response, [call](grpc::Status status) mutable {
          // As in RpcCall: the call's state is released on the loop thread.
          EventLoop* loop = call->loop;
          loop->post([call = std::move(call), status = std::move(status)]() mutable {
            call->status = std::move(status);
            call->answered.set();
          });
        });
    loop_.create_task(send(shared_from_this(), std::move(batch), std::move(call)));
  }

  // Idempotency keys make a retried creation safe. One key for the call
  // costs the server far less than one per task; a call whose tasks carry
  // keys of their own (which the server then requires of all) gives one to
  // each task that has none.
  void set_keys(v1::CreateTasksRequest& request) {
    const bool own_keys = std::any_of(
        request.tasks().begin(), request.tasks().end(),
        [](const v1::CreateTaskRequest& task) { return !task.idempotency_key().empty(); });
    if (!own_keys) {
      append_key(*request.mutable_idempotency_key(), key_prefix_, next_key_++);
      return;
    }
    for (v1::CreateTaskRequest& task : *request.mutable_tasks()) {
      if (task.idempotency_key().empty())
        append_key(*task.mutable_idempotency_key(), key_prefix_, next_key_++);
    }
  }

  // A CreateTasks call started by launch().
  struct StartedCreate {
    grpc::ClientContext context;
    v1::CreateTasksResponse response;
    grpc::Status status;  // Loop thread, once answered.
    Event answered;
    EventLoop* loop = nullptr;
  };

  // Waits for a batch's creation, then follows its tasks not yet finished.
  // `self` keeps the client's state alive while its calls run.
  Task<void> send([[maybe_unused]] std::shared_ptr<Impl> self, std::shared_ptr<detail::Batch> batch,
                  std::shared_ptr<StartedCreate> call) {
    std::exception_ptr error;
    {
      // The server may have created the tasks whatever happens here, so the
      // answer is awaited even if this task is cancelled meanwhile.
      for (;;) {
        bool interrupted = false;
        try {
          co_await call->answered.wait();
        } catch (const CancelledError&) {
          interrupted = true;
        }
        if (!interrupted) break;
      }
      v1::CreateTasksResponse response = std::move(call->response);
      grpc::Status status = std::move(call->status);
      call.reset();
      if (status.error_code() == grpc::StatusCode::UNAVAILABLE && options_.max_attempts > 1) {
        try {
          // Idempotency keys make the retry of a creation safe.
          co_await sleep(options_.initial_backoff);
          response = co_await unary(
              static_cast<AsyncMethod<v1::CreateTasksRequest, v1::CreateTasksResponse>>(
                  &Async::CreateTasks),
              batch->request, true, options_.call_timeout, OnCancel::kFinishFirst, 1);
        } catch (...) {
          error = std::current_exception();
        }
      } else if (!status.ok()) {
        try {
          throw_rpc_error(status);
        } catch (...) {
          error = std::current_exception();
        }
      }
      --calls_in_flight_;
      if (pending_ && calls_in_flight_ < options_.max_calls_in_flight) send_pending();
      if (!error && response.tasks_size() != static_cast<int>(batch->tasks.size())) {
        error = std::make_exception_ptr(
            RpcError(grpc::Status(grpc::StatusCode::INTERNAL,
                                  "CreateTasks answered " + std::to_string(response.tasks_size()) +
                                      " tasks for " + std::to_string(batch->tasks.size()))));
      }
      if (error && batch->tasks.size() > 1 && holds<RequestRejected>(error)) {
        // One bad task rejects the batch, and nothing of it is created: send
        // them one by one, so that only the bad ones fail. (Any other error
        // fails them all: the server may have created them under the
        // call's key, which singles would not find.)
        split(*batch);
        batch->created.set();
        co_return;
      }
      // The requests are not needed while the tasks are followed, which can
      // be long.
      v1::CreateTasksRequest().Swap(&batch->request);
      std::vector<TaskHandle<Value>> unfinished;
      unfinished.reserve(batch->tasks.size());
      for (std::size_t i = 0; i < batch->tasks.size(); ++i) {
        detail::RemoteState& state = remote_state(batch->tasks[i]);
        if (error) {
          state.set_exception(error);
          continue;
        }
        v1::Task& task = *response.mutable_tasks(static_cast<int>(i));
        state.remote.id.assign(task.id());
        if (finished(task)) {
          resolve(state, task);
        } else {
          unfinished.push_back(std::move(batch->tasks[i]));
        }
      }
      batch->tasks = std::move(unfinished);
    }
    batch->created.set();
    // Cancelled while being created: now they have ids to cancel by.
    for (const auto& task : batch->tasks) {
      if (remote_state(task).remote.cancel_requested) cancel_remote(remote_state(task));
    }
    if (!batch->tasks.empty()) co_await follow(*batch);
  }

  void split(detail::Batch& batch) {
    for (std::size_t i = 0; i < batch.tasks.size(); ++i) {
      auto one = std::make_shared<detail::Batch>(*this);
      one->request.add_tasks()->Swap(batch.request.mutable_tasks(static_cast<int>(i)));
      remote_state(batch.tasks[i]).batch = one.get();
      one->tasks.push_back(std::move(batch.tasks[i]));
      launch(std::move(one));
    }
    batch.tasks.clear();
  }

  // One AsCompleted stream tells every task of a batch when it finishes; if
  // the stream breaks, the tasks not yet finished are followed again. The
  // batch keeps its tasks (sorted by id, to find them) until the end.
  Task<void> follow(detail::Batch& batch) {
    std::vector<TaskHandle<Value>>& tasks = batch.tasks;
    std::sort(tasks.begin(), tasks.end(), [](const auto& a, const auto& b) {
      return remote_state(a).remote.id.key() < remote_state(b).remote.id.key();
    });
    // Completes the tasks of `id` (repeated idempotency keys give several
    // the same id); the last takes the result, the others a copy.
    auto on_task = [&](v1::Task& task) {
      char scratch[16];
      detail::RemoteId::Key key = detail::RemoteId::key_of(task.id(), scratch);
      auto [first, last] = std::equal_range(tasks.begin(), tasks.end(), key, IdOrder{});
      for (auto it = first; it != last; ++it) {
        if (std::next(it) == last) {
          resolve(remote_state(*it), task);
        } else {
          v1::Task copy = task;
          resolve(remote_state(*it), copy);
        }
      }
    };
    Duration backoff = options_.initial_backoff;
    for (int attempt = 1;; ++attempt) {
      // Those finished meanwhile (cancelled by their own call) are left out.
      auto request = std::make_unique<v1::AsCompletedRequest>();
      for (const auto& task : tasks) {
        if (task.done()) continue;
        request->add_ids(remote_state(task).remote.id.text());
      }
      if (request->ids_size() == 0) break;
      request->set_view(v1::TASK_VIEW_OUTCOME);
      stats_.follow_streams++;
      grpc::Status status;
      std::exception_ptr stopped;
      try {
        status = co_await stream_completions(std::move(request), on_task);
      } catch (...) {
        stopped = std::current_exception();
      }
      if (stopped) {
        // This follower was cancelled (the loop is shutting down): the
        // tasks it leaves finish as cancelled, unless their own cancel call
        // will say how they ended.
        for (const auto& task : tasks) {
          if (!remote_state(task).remote.cancel_requested)
            remote_state(task).set_exception(stopped);
        }
        std::rethrow_exception(stopped);
      }
      bool all_done = std::all_of(tasks.begin(), tasks.end(),
                                  [](const TaskHandle<Value>& task) { return task.done(); });
      if (all_done) break;
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED && batched_streams_) {
        // A server older than AsCompletedBatches: AsCompleted does the same
        // work, a message per task. (Not an attempt: nothing failed.)
        batched_streams_ = false;
        --attempt;
        continue;
      }
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE ||
          attempt >= options_.max_attempts) {
        auto error = std::make_exception_ptr(RpcError(status));
        for (const auto& task : tasks) remote_state(task).set_exception(error);
        break;
      }
      co_await sleep(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }

  struct IdOrder {
    bool operator()(const TaskHandle<Value>& a, const detail::RemoteId::Key& b) const {
      return remote_state(a).remote.id.key() < b;
    }
    bool operator()(const detail::RemoteId::Key& a, const TaskHandle<Value>& b) const {
      return a < remote_state(b).remote.id.key();
    }
  };

  // Asks the server to cancel a task and completes it with how it ended.
  Task<void> cancel_and_resolve([[maybe_unused]] std::shared_ptr<Impl> self,
                                TaskHandle<Value> handle) {
    detail::RemoteState& state = remote_state(handle);
    std::exception_ptr error;
    try {
      v1::Task task = co_await cancel(state.remote.id.text());
      resolve(state, task);
    } catch (...) {
      error = std::current_exception();
    }
    if (error) state.set_exception(error);
  }

  // Reads a completion stream (AsCompletedBatches, or AsCompleted from a
  // server without it), calling `on_task` on the loop for each task;
  // completes with the stream's status.
  Task<grpc::Status> stream_completions(std::unique_ptr<v1::AsCompletedRequest> request,
                                        std::function<void(v1::Task&)> on_task);

  EventLoop& loop_;
  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TaskService::Stub> stub_;
  const std::string key_prefix_;
  std::uint64_t next_key_ = 0;
  std::shared_ptr<detail::Batch> pending_;  // Tasks created, not yet sent.
  std::size_t pending_limit_ = 0;           // Its size to go at once.
  bool flush_scheduled_ = false;
  int calls_in_flight_ = 0;  // CreateTasks calls.
  // Whether the server has AsCompletedBatches (until it says it has not):
  // its tasks that finish together come in one message, not one each.
  bool batched_streams_ = true;
  ClientStats stats_;
};

namespace detail {

Task<void> RemoteState::wait_created() {
  std::shared_ptr<Batch> keep = batch->shared_from_this();
  co_await keep->created.wait();
}

void RemoteState::on_cancel_requested() {
  if (std::exchange(remote.cancel_requested, true)) return;
  // Without an id yet, its batch cancels it once created.
  if (!remote.id.empty()) batch->impl.cancel_remote(*this);
}

}  // namespace detail

std::optional<v1::Task> RemoteTask::record() const {
  const detail::RemoteState& s = state();
  if (!s.done() || s.remote.remote_state == 0) return std::nullopt;
  v1::Task task;
  task.set_id(s.remote.id.text());
  task.set_state(static_cast<v1::TaskState>(s.remote.remote_state));
  task.set_attempt(s.remote.attempt);
  if (s.status() == ::taskwire::detail::TaskStatus::kSucceeded) {
    *task.mutable_result() = handle_.result();
  } else if (s.status() == ::taskwire::detail::TaskStatus::kFailed) {
    try {
      std::rethrow_exception(handle_.exception());
    } catch (const RemoteTaskError& error) {
      task.mutable_error()->set_type(error.type());
      task.mutable_error()->set_message(error.message());
    } catch (...) {
    }
  }
  return task;
}

namespace {

// The tasks of one message of a completion stream.
template <typename F>
void each_task(v1::Task& task, F&& f) {
  f(task);
}
template <typename F>
void each_task(v1::TaskBatch& batch, F&& f) {
  for (v1::Task& task : *batch.mutable_tasks()) f(task);
}

void start_stream(v1::TaskService::Stub* stub, grpc::ClientContext* context,
                  const v1::AsCompletedRequest* request,
                  grpc::ClientReadReactor<v1::Task>* reader) {
  stub->async()->AsCompleted(context, request, reader);
}
void start_stream(v1::TaskService::Stub* stub, grpc::ClientContext* context,
                  const v1::AsCompletedRequest* request,
                  grpc::ClientReadReactor<v1::TaskBatch>* reader) {
  stub->async()->AsCompletedBatches(context, request, reader);
}

// Reads one completion stream (AsCompleted's tasks, or AsCompletedBatches'
// runs of them) with gRPC's callback API: each message is handed to the
// loop; the end of the stream completes the awaiting task.
template <typename Message>
class CompletionReader final : public grpc::ClientReadReactor<Message> {
 public:
  struct Shared {
    std::function<void(v1::Task&)> on_task;  // Loop thread only.
    grpc::Status status;                     // Loop thread only.
    Event done;                              // Loop thread only.
    std::mutex mutex;
    std::vector<Message> arrived;  // Guarded by mutex; handed over in bulk.
    bool delivery_posted = false;  // Guarded by mutex.

    // On the loop: hands what has arrived to on_task.
    void deliver() {
      std::vector<Message> messages;
      {
        std::lock_guard lock(mutex);
        messages.swap(arrived);
        delivery_posted = false;
      }
      for (auto& message : messages) each_task(message, on_task);
    }
  };

  CompletionReader(EventLoop& loop, std::shared_ptr<Shared> shared)
      : loop_(loop), shared_(std::move(shared)) {}

  void start(v1::TaskService::Stub* stub, std::unique_ptr<v1::AsCompletedRequest> request) {
    start_stream(stub, &context_, request.get(), this);
    this->StartRead(&message_);
    this->StartCall();
    // StartCall has serialized the request (the reader's first batch of
    // operations sends it), and a follow of 10,000 tasks would otherwise
    // keep 10,000 id strings for as long as they run.
  }
  void cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // The stream is over; OnDone follows.
    bool post;
    {
      // Messages arriving while the loop is busy go over in one hand-off.
      std::lock_guard lock(shared_->mutex);
      shared_->arrived.emplace_back().Swap(&message_);
      post = !std::exchange(shared_->delivery_posted, true);
    }
    if (post) loop_.post([shared = shared_] { shared->deliver(); });
    this->StartRead(&message_);
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
  Message message_;
};

template <typename Message>
Task<grpc::Status> read_completions(EventLoop& loop, v1::TaskService::Stub* stub,
                                    std::unique_ptr<v1::AsCompletedRequest> request,
                                    std::function<void(v1::Task&)> on_task) {
  using Reader = CompletionReader<Message>;
  auto shared = std::make_shared<typename Reader::Shared>();
  shared->on_task = std::move(on_task);
  auto reader = std::make_unique<Reader>(loop, shared);
  reader->start(stub, std::move(request));
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

}  // namespace

Task<grpc::Status> Client::Impl::stream_completions(std::unique_ptr<v1::AsCompletedRequest> request,
                                                    std::function<void(v1::Task&)> on_task) {
  if (batched_streams_) {
    return read_completions<v1::TaskBatch>(loop_, stub_.get(), std::move(request),
                                           std::move(on_task));
  }
  return read_completions<v1::Task>(loop_, stub_.get(), std::move(request), std::move(on_task));
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
ClientStats Client::stats() const noexcept { return impl_->stats(); }

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
