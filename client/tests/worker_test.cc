// The worker library against a real taskwired: the worker runs on its own
// loop thread in this process; the test drives tasks with synchronous
// stubs, and speaks the raw worker protocol where it tests the server's
// answers to bad input.
#include "client/worker.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "client/tests/taskwired_process.h"
#include "core/errors.h"
#include "core/sleep.h"
#include "taskwire/v1/tasks.grpc.pb.h"

namespace taskwire::client {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::TaskwiredProcess;

Value json(const std::string& text) {
  Value value;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &value).ok()) << text;
  return value;
}

Value number(double n) {
  Value value;
  value.set_number_value(n);
  return value;
}

// A Worker serving on its own thread until destroyed.
class WorkerThread {
 public:
  WorkerThread(const std::string& target, const std::function<void(Worker&)>& setup) {
    WorkerOptions options;
    options.target = target;
    options.identity = "test-worker";
    options.credits = 8;
    options.log = [](const std::string&) {};
    worker_ = std::make_unique<Worker>(loop_, options);
    setup(*worker_);
    std::promise<void> connected;
    std::future<void> ready = connected.get_future();
    thread_ = std::thread([this, &connected] { loop_.run(serve(connected)); });
    if (ready.wait_for(10s) != std::future_status::ready)
      throw std::runtime_error("the worker did not connect");
  }
  ~WorkerThread() {
    worker_->stop();
    thread_.join();
  }
  Worker& worker() { return *worker_; }
  std::thread::id thread_id() const { return thread_.get_id(); }

 private:
  Task<void> serve(std::promise<void>& connected) {
    TaskHandle<void> running = loop_.create_task(worker_->run());
    co_await worker_->connected().wait();
    connected.set_value();
    co_await running;
  }

  EventLoop loop_;
  std::unique_ptr<Worker> worker_;
  std::thread thread_;
};

class WorkerTest : public ::testing::Test {
 protected:
  explicit WorkerTest(std::vector<std::string> flags = {}) : server_(flags) {
    channel_ = grpc::CreateChannel(server_.target(), grpc::InsecureChannelCredentials());
    tasks_ = v1::TaskService::NewStub(channel_);
    workers_ = v1::WorkerService::NewStub(channel_);
  }

  v1::Task create(const std::string& kind, const Value& args, const v1::DispatchOptions& dispatch) {
    v1::CreateTaskRequest request;
    request.set_kind(kind);
    *request.mutable_args() = args;
    *request.mutable_dispatch() = dispatch;
    v1::Task task;
    grpc::ClientContext context;
    grpc::Status status = tasks_->CreateTask(&context, request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return task;
  }
  v1::Task create(const std::string& kind, const Value& args) {
    return create(kind, args, v1::DispatchOptions());
  }
  v1::Task await(const std::string& id) {
    v1::AwaitTaskRequest request;
    request.set_id(id);
    request.mutable_wait_timeout()->set_seconds(20);
    v1::AwaitTaskResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(tasks_->AwaitTask(&context, request, &response).ok());
    EXPECT_TRUE(response.done());
    return response.task();
  }
  v1::Task get(const std::string& id) {
    v1::GetTaskRequest request;
    request.set_id(id);
    v1::Task task;
    grpc::ClientContext context;
    EXPECT_TRUE(tasks_->GetTask(&context, request, &task).ok());
    return task;
  }
  // Polls (bounded) until the task reaches `state`.
  bool wait_for_state(const std::string& id, v1::TaskState state) {
    auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      if (get(id).state() == state) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  TaskwiredProcess server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TaskService::Stub> tasks_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
};

TEST_F(WorkerTest, RunsATaskOfItsKindEndToEnd) {
  WorkerThread thread(server_.target(), [](Worker& worker) {
    worker.handle("double", [](const Value& args, WorkerTaskContext& context) -> Task<Value> {
      EXPECT_EQ(context.kind(), "double");
      EXPECT_EQ(context.attempt(), 1u);
      co_return number(2 * args.struct_value().fields().at("n").number_value());
    });
  });
  v1::Task created = create("double", json(R"({"n": 21})"));
  v1::Task done = await(created.id());
  EXPECT_EQ(done.state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(done.result().number_value(), 42);
  EXPECT_EQ(done.attempt(), 1u);
  EXPECT_TRUE(done.has_start_time());
}

TEST_F(WorkerTest, BlockingHandlersRunOffTheLoopThread) {
  std::atomic<bool> off_loop{false};
  std::thread::id loop_thread;
  WorkerThread thread(server_.target(), [&](Worker& worker) {
    worker.handle_blocking("square", [&](const Value& args, const WorkerTaskContext& context) {
      off_loop = std::this_thread::get_id() != loop_thread;
      EXPECT_FALSE(context.task_id().empty());
      double n = args.struct_value().fields().at("n").number_value();
      return number(n * n);
    });
  });
  loop_thread = thread.thread_id();
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i)
    ids.push_back(create("square", json("{\"n\": " + std::to_string(i) + "}")).id());
  for (int i = 0; i < 20; ++i) {
    v1::Task done = await(ids[i]);
    EXPECT_EQ(done.state(), v1::TASK_STATE_SUCCEEDED);
    EXPECT_EQ(done.result().number_value(), i * i);
  }
  EXPECT_TRUE(off_loop);
}

TEST_F(WorkerTest, ABlockingHandlersHeartbeatsFromItsThreadKeepItsTaskAlive) {
  WorkerThread thread(server_.target(), [&](Worker& worker) {
    worker.handle_blocking("steps", [&](const Value&, const WorkerTaskContext& context) {
      // 600 ms of work against a 200 ms heartbeat timeout.
      for (int step = 1; step <= 12; ++step) {
        std::this_thread::sleep_for(50ms);
        context.heartbeat(number(step));
      }
      return number(12);
    });
  });
  v1::DispatchOptions dispatch;
  dispatch.mutable_heartbeat_timeout()->set_nanos(200'000'000);
  dispatch.mutable_retry_policy()->set_maximum_attempts(1);
  v1::Task created = create("steps", Value(), dispatch);
  v1::Task done = await(created.id());
  EXPECT_EQ(done.state(), v1::TASK_STATE_SUCCEEDED) << done.error().message();
  EXPECT_EQ(done.result().number_value(), 12);
  EXPECT_EQ(done.progress().number_value(), 12);
}

TEST_F(WorkerTest, CancellingARunningTaskCancelsItsHandler) {
  std::atomic<std::int64_t> cancelled_at{0};
  WorkerThread thread(server_.target(), [&](Worker& worker) {
    worker.handle("forever", [&](const Value&, WorkerTaskContext& context) -> Task<Value> {
      context.heartbeat(json(R"({"step": 1})"));
      bool cancelled = false;
      try {
        co_await sleep(3600s);
      } catch (const CancelledError&) {
        cancelled = true;
      }
      if (cancelled) {
        cancelled_at = Clock::now().time_since_epoch().count();
        throw CancelledError();
      }
      co_return Value();
    });
  });
  v1::Task created = create("forever", Value());
  ASSERT_TRUE(wait_for_state(created.id(), v1::TASK_STATE_RUNNING));
  // The handler's heartbeat details show as the task's progress.
  auto deadline = Clock::now() + 10s;
  while (!get(created.id()).has_progress() && Clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(get(created.id()).progress().struct_value().fields().at("step").number_value(), 1);
  auto asked = Clock::now();
  v1::CancelTaskRequest request;
  request.set_id(created.id());
  v1::Task cancelled;
  grpc::ClientContext context;
  ASSERT_TRUE(tasks_->CancelTask(&context, request, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::TASK_STATE_CANCELLED);
  deadline = Clock::now() + 5s;
  while (cancelled_at == 0 && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  ASSERT_NE(cancelled_at, 0);
  auto latency = Clock::time_point(Clock::duration(cancelled_at.load())) - asked;
  std::printf("CancelTask -> handler sees CancelledError: %lld us\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::microseconds>(latency).count()));
  EXPECT_LT(latency, 1s);
}

TEST_F(WorkerTest, AFailingHandlerIsRetriedWithBackoff) {
  std::mutex mutex;
  std::vector<Clock::time_point> attempts;
  WorkerThread thread(server_.target(), [&](Worker& worker) {
    worker.handle("flaky", [&](const Value&, WorkerTaskContext& context) -> Task<Value> {
      {
        std::lock_guard lock(mutex);
        attempts.push_back(Clock::now());
      }
      if (context.attempt() < 3) throw HandlerError("Flaky", "not yet", false);
      co_return number(context.attempt());
    });
  });
  v1::DispatchOptions dispatch;
  dispatch.mutable_retry_policy()->mutable_initial_interval()->set_nanos(100'000'000);
  dispatch.mutable_retry_policy()->set_backoff_coefficient(3);
  v1::Task done = await(create("flaky", Value(), dispatch).id());
  EXPECT_EQ(done.state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(done.result().number_value(), 3);
  EXPECT_EQ(done.attempt(), 3u);
  std::lock_guard lock(mutex);
  ASSERT_EQ(attempts.size(), 3u);
  EXPECT_GE(attempts[1] - attempts[0], 100ms);
  EXPECT_GE(attempts[2] - attempts[1], 300ms);
  EXPECT_LT(attempts[2] - attempts[0], 3s);
}

TEST_F(WorkerTest, ANonRetryableHandlerErrorFailsTheTaskAtOnce) {
  WorkerThread thread(server_.target(), [&](Worker& worker) {
    worker.handle("bad", [&](const Value&, WorkerTaskContext&) -> Task<Value> {
      throw HandlerError("ValueError", "n must be even", true);
      co_return Value();
    });
  });
  v1::Task done = await(create("bad", Value()).id());
  EXPECT_EQ(done.state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(done.error().type(), "ValueError");
  EXPECT_EQ(done.error().message(), "n must be even");
  EXPECT_EQ(done.attempt(), 1u);
}

TEST_F(WorkerTest, ATaskNoWorkerTakesFailsAfterItsScheduleToStartTimeout) {
  v1::DispatchOptions dispatch;
  dispatch.mutable_schedule_to_start_timeout()->set_nanos(300'000'000);
  auto start = Clock::now();
  v1::Task created = create("nobody", Value(), dispatch);
  EXPECT_EQ(created.state(), v1::TASK_STATE_PENDING);
  v1::Task done = await(created.id());
  EXPECT_EQ(done.state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(done.error().type(), "TimeoutError");
  EXPECT_GE(Clock::now() - start, 300ms);
}

// The raw protocol, as a worker in another language would speak it.
class RawStream {
 public:
  explicit RawStream(v1::WorkerService::Stub& stub) : stream_(connect(stub, context_)) {}
  bool write(const v1::WorkerMessage& message) { return stream_->Write(message); }
  std::optional<v1::ServerMessage> read() {
    v1::ServerMessage message;
    if (!stream_->Read(&message)) return std::nullopt;
    return message;
  }
  grpc::Status finish() {
    stream_->WritesDone();
    return stream_->Finish();
  }

 private:
  using Stream = grpc::ClientReaderWriter<v1::WorkerMessage, v1::ServerMessage>;
  // Bounded: a read the server never answers fails the test, not hangs it.
  static std::unique_ptr<Stream> connect(v1::WorkerService::Stub& stub,
                                         grpc::ClientContext& context) {
    context.set_deadline(std::chrono::system_clock::now() + 30s);
    return stub.Connect(&context);
  }

  grpc::ClientContext context_;
  std::unique_ptr<Stream> stream_;
};

v1::WorkerMessage hello(const std::string& kind, std::uint32_t credits) {
  v1::WorkerMessage message;
  message.mutable_hello()->add_kinds(kind);
  message.mutable_hello()->set_credits(credits);
  return message;
}

// Creates `n` tasks of `kind` in one CreateTasks call; their ids.
std::vector<std::string> create_many(v1::TaskService::Stub& tasks, const std::string& kind, int n) {
  v1::CreateTasksRequest request;
  for (int i = 0; i < n; ++i) {
    v1::CreateTaskRequest* one = request.add_tasks();
    one->set_kind(kind);
    *one->mutable_args() = number(i);
  }
  v1::CreateTasksResponse response;
  grpc::ClientContext context;
  grpc::Status status = tasks.CreateTasks(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  std::vector<std::string> ids;
  for (const v1::Task& task : response.tasks()) ids.push_back(task.id());
  return ids;
}

TEST_F(WorkerTest, AWorkerThatTakesNoBatchesGetsEachAssignmentAlone) {
  RawStream stream(*workers_);
  ASSERT_TRUE(stream.write(hello("single", 5)));
  ASSERT_TRUE(stream.read()->has_welcome());
  create_many(*tasks_, "single", 5);
  for (int i = 0; i < 5; ++i) {
    auto message = stream.read();
    ASSERT_TRUE(message.has_value()) << "message " << i;
    EXPECT_TRUE(message->has_assignment()) << message->DebugString();
  }
}

TEST_F(WorkerTest, AssignmentsMadeTogetherGoOutInBatchesAndOneBatchAnswersThemAll) {
  constexpr int kTasks = 50;
  RawStream stream(*workers_);
  v1::WorkerMessage greeting = hello("batched", kTasks);
  greeting.mutable_hello()->set_batches(true);
  ASSERT_TRUE(stream.write(greeting));
  auto welcome = stream.read();
  ASSERT_TRUE(welcome && welcome->has_welcome());
  EXPECT_TRUE(welcome->welcome().batches());
  std::vector<std::string> ids = create_many(*tasks_, "batched", kTasks);
  ASSERT_EQ(ids.size(), std::size_t{kTasks});
  std::vector<v1::Assignment> assignments;
  int messages = 0, batches = 0;
  while (assignments.size() < ids.size()) {
    auto message = stream.read();
    ASSERT_TRUE(message.has_value()) << "after " << assignments.size() << " assignments";
    ++messages;
    if (message->has_batch()) {
      ++batches;
      for (const v1::ServerMessage& inner : message->batch().messages()) {
        ASSERT_TRUE(inner.has_assignment()) << inner.DebugString();
        assignments.push_back(inner.assignment());
      }
    } else {
      ASSERT_TRUE(message->has_assignment()) << message->DebugString();
      assignments.push_back(message->assignment());
    }
  }
  // Created in one call, they are assigned in one loop pass: the first
  // goes out at once, the rest together while it is written.
  EXPECT_GE(batches, 1);
  EXPECT_LT(messages, kTasks) << messages << " messages for " << kTasks << " assignments";
  v1::WorkerMessage answers;
  for (const v1::Assignment& assignment : assignments) {
    v1::WorkerMessage* answer = answers.mutable_batch()->add_messages();
    *answer->mutable_result()->mutable_token() = assignment.token();
    *answer->mutable_result()->mutable_result() = assignment.args();
  }
  ASSERT_TRUE(stream.write(answers));
  for (int i = 0; i < kTasks; ++i) {
    v1::Task done = await(ids[i]);
    EXPECT_EQ(done.state(), v1::TASK_STATE_SUCCEEDED) << ids[i];
    EXPECT_EQ(done.result().number_value(), i) << ids[i];
  }
}

TEST_F(WorkerTest, AMalformedHelloEndsTheStreamWithInvalidArgument) {
  RawStream stream(*workers_);
  stream.write(hello("k", 0));
  EXPECT_FALSE(stream.read().has_value());
  grpc::Status status = stream.finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "hello.credits: must be at least 1");
}

TEST_F(WorkerTest, AMessageBeforeHelloEndsTheStreamWithInvalidArgument) {
  RawStream stream(*workers_);
  v1::WorkerMessage beat;
  beat.mutable_heartbeat();
  stream.write(beat);
  EXPECT_FALSE(stream.read().has_value());
  grpc::Status status = stream.finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "message: the first message must be hello, got heartbeat");
}

TEST_F(WorkerTest, AResultAfterTheAttemptTimedOutIsRejectedAndNotApplied) {
  RawStream stream(*workers_);
  ASSERT_TRUE(stream.write(hello("slow", 1)));
  ASSERT_TRUE(stream.read()->has_welcome());
  v1::DispatchOptions dispatch;
  dispatch.mutable_start_to_close_timeout()->set_nanos(200'000'000);
  dispatch.mutable_retry_policy()->set_maximum_attempts(1);
  v1::Task created = create("slow", Value(), dispatch);
  auto assignment = stream.read();
  ASSERT_TRUE(assignment && assignment->has_assignment());
  auto cancel = stream.read();
  ASSERT_TRUE(cancel && cancel->has_cancel());
  EXPECT_EQ(cancel->cancel().reason(), "start_to_close_timeout");
  v1::WorkerMessage late;
  *late.mutable_result()->mutable_token() = assignment->assignment().token();
  *late.mutable_result()->mutable_result() = number(1);
  ASSERT_TRUE(stream.write(late));
  auto rejection = stream.read();
  ASSERT_TRUE(rejection && rejection->has_rejection());
  EXPECT_EQ(rejection->rejection().field(), "result.token");
  EXPECT_EQ(
      rejection->rejection().reason().rfind("stale token: attempt 1 of task " + created.id(), 0),
      0u)
      << rejection->rejection().reason();
  v1::Task done = await(created.id());
  EXPECT_EQ(done.state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(done.error().type(), "TimeoutError");
}

class RefusingWorkerTest : public WorkerTest {
 protected:
  RefusingWorkerTest() : WorkerTest({"--refuse-unknown-kinds"}) {}
};

TEST_F(RefusingWorkerTest, TasksOfKindsNoWorkerRunsAreRefused) {
  v1::CreateTaskRequest request;
  request.set_kind("resize");
  v1::Task task;
  grpc::ClientContext context;
  grpc::Status status = tasks_->CreateTask(&context, request, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "kind: unknown kind 'resize': no connected worker runs it (--refuse-unknown-kinds); "
            "known kinds: echo, fail, sleep, wait_random");
  WorkerThread thread(server_.target(), [](Worker& worker) {
    worker.handle("resize",
                  [](const Value&, WorkerTaskContext&) -> Task<Value> { co_return Value(); });
  });
  EXPECT_EQ(await(create("resize", Value()).id()).state(), v1::TASK_STATE_SUCCEEDED);
}

TEST(WorkerReconnectTest, AWorkerReconnectsWhenTheServerRestarts) {
  auto first = std::make_unique<TaskwiredProcess>();
  const int port = first->port();
  const std::string target = first->target();
  std::atomic<int> runs{0};
  WorkerThread thread(target, [&](Worker& worker) {
    worker.handle("count", [&](const Value&, WorkerTaskContext&) -> Task<Value> {
      co_return number(++runs);
    });
  });
  EXPECT_EQ(first->stop(), 0);
  first.reset();
  TaskwiredProcess second("127.0.0.1:" + std::to_string(port), {});
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto tasks = v1::TaskService::NewStub(channel);
  v1::RunTaskRequest request;
  request.mutable_task()->set_kind("count");
  request.mutable_wait_timeout()->set_seconds(20);
  v1::AwaitTaskResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(tasks->RunTask(&context, request, &response).ok());
  EXPECT_EQ(response.task().state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(response.task().result().number_value(), 1);
}

}  // namespace
}  // namespace taskwire::client
