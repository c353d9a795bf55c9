// The client library against a real taskwired process over loopback.
#include "client/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/errors.h"
#include "client/tests/taskwired_process.h"
#include "core/gather.h"
#include "core/sleep.h"
#include "core/wait_for.h"

namespace taskwire::client {
namespace {

using namespace std::chrono_literals;

ClientOptions options_for(const std::string& target) {
  ClientOptions options;
  options.target = target;
  return options;
}

Value args(const std::string& json) { return json_value(json); }

// An echo task whose result is the number `i`.
TaskHandle<Value> numbered_echo(Client& client, int i) {
  return client.create_task("echo", json_value("{\"value\": " + std::to_string(i) + "}")).handle();
}

// Awaits tasks made by numbered_echo for 0, 1, 2, ... and checks each
// result.
Task<void> expect_numbered(std::vector<TaskHandle<Value>> tasks) {
  const int n = static_cast<int>(tasks.size());
  auto results = co_await gather(std::move(tasks));
  for (int i = 0; i < n; ++i) EXPECT_EQ(results[i].number_value(), i);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

class ClientTest : public ::testing::Test {
 protected:
  ClientTest() : client_(loop_, options_for(server_.target())) {}
  ~ClientTest() override { EXPECT_EQ(server_.stop(), 0); }

  template <typename F>
  void run(F body) {
    loop_.run(body());
  }

  testing::TaskwiredProcess server_;
  EventLoop loop_;
  Client client_;
};

TEST_F(ClientTest, AnAwaitedRemoteTaskGivesItsResult) {
  run([&]() -> Task<void> {
    RemoteTask task = client_.create_task("echo", args(R"({"value": {"a": [1, "b"]}})"));
    Value result = co_await task;
    EXPECT_EQ(to_json(result), R"({"a":[1,"b"]})");
    EXPECT_EQ(task.id().size(), 26u);
    EXPECT_EQ(task.record()->state(), v1::TASK_STATE_SUCCEEDED);
  });
}

TEST_F(ClientTest, ARemoteFailureIsThrownWithItsTypeAndMessage) {
  run([&]() -> Task<void> {
    RemoteTask task =
        client_.create_task("fail", args(R"({"message": "no luck", "type": "ValueError"})"));
    try {
      co_await task;
      ADD_FAILURE() << "should have thrown";
    } catch (const RemoteTaskError& error) {
      EXPECT_EQ(error.type(), "ValueError");
      EXPECT_EQ(error.message(), "no luck");
      EXPECT_EQ(error.task_id(), task.id());
    }
  });
}

TEST_F(ClientTest, GatheringRemoteSleepsOfTwoAndOneSecondsTakesAboutTwoSeconds) {
  run([&]() -> Task<void> {
    auto start = std::chrono::steady_clock::now();
    auto a = client_.create_task("sleep", args(R"({"seconds": 2})"));
    auto b = client_.create_task("sleep", args(R"({"seconds": 1})"));
    co_await gather(a.handle(), b.handle());
    double took = seconds_since(start);
    EXPECT_GE(took, 1.9);
    EXPECT_LT(took, 2.9);
  });
}

TEST_F(ClientTest, LocalAndRemoteTasksMixInOneGather) {
  run([&]() -> Task<void> {
    auto local = [](int v) -> Task<Value> {
      co_await sleep(100ms);
      Value value;
      value.set_number_value(v);
      co_return value;
    };
    auto [remote, here] =
        co_await gather(client_.create_task("echo", args(R"({"value": 1})")).handle(), local(2));
    EXPECT_EQ(remote.number_value() + here.number_value(), 3);
  });
}

TEST_F(ClientTest, WaitForCancelsTheRemoteTaskOnTimeout) {
  run([&]() -> Task<void> {
    RemoteTask task = client_.create_task("sleep", args(R"({"seconds": 30})"));
    EXPECT_THROW(co_await wait_for(task.handle(), 300ms), TimeoutError);
    v1::Task record = co_await client_.get(task.id());
    EXPECT_EQ(record.state(), v1::TASK_STATE_CANCELLED);
  });
}

TEST_F(ClientTest, CancellingTheAwaitingCoroutineLeavesTheRemoteTaskRunning) {
  run([&]() -> Task<void> {
    RemoteTask task = client_.create_task("sleep", args(R"({"seconds": 30})"));
    auto awaiting = [](RemoteTask remote) -> Task<Value> { co_return co_await remote; };
    auto waiter = EventLoop::current()->create_task(awaiting(task));
    co_await sleep(200ms);
    waiter.cancel();
    EXPECT_THROW(co_await waiter, CancelledError);
    EXPECT_EQ((co_await client_.get(task.id())).state(), v1::TASK_STATE_RUNNING);
    // Asked explicitly, it stops.
    EXPECT_TRUE(task.cancel());
    EXPECT_THROW(co_await task.handle(), CancelledError);
    EXPECT_EQ((co_await client_.get(task.id())).state(), v1::TASK_STATE_CANCELLED);
  });
}

TEST_F(ClientTest, ABadRequestFailsOnlyItsOwnTaskWithTheServersMessage) {
  run([&]() -> Task<void> {
    auto good = client_.create_task("echo", args(R"({"value": 1})"));
    auto bad = client_.create_task("sleep", args(R"({"seconds": -1})"));
    EXPECT_EQ((co_await good).number_value(), 1);
    try {
      co_await bad;
      ADD_FAILURE() << "should have thrown";
    } catch (const RequestRejected& error) {
      EXPECT_EQ(error.code(), grpc::StatusCode::INVALID_ARGUMENT);
      EXPECT_EQ(error.details().rfind("tasks[0].args.seconds: ", 0), 0u) << error.details();
    }
  });
}

TEST_F(ClientTest, RunCreatesAndAwaitsInOneCall) {
  run([&]() -> Task<void> {
    Value result = co_await client_.run("wait_random", args(R"({"max_delay": 0.1})"));
    EXPECT_GE(result.number_value(), 0.0);
    EXPECT_LE(result.number_value(), 0.1);
  });
}

TEST_F(ClientTest, TenThousandRemoteTasksCompleteTogether) {
  run([&]() -> Task<void> {
    std::vector<TaskHandle<Value>> tasks;
    for (int i = 0; i < 10'000; ++i)
      tasks.push_back(client_.create_task("sleep", args(R"({"seconds": 1})")).handle());
    auto start = std::chrono::steady_clock::now();
    auto results = co_await gather(std::move(tasks));
    EXPECT_EQ(results.size(), 10'000u);
    EXPECT_LT(seconds_since(start), 5.0);
  });
}

TEST_F(ClientTest, ABatchThatReachesMaxBatchIsSentAtOnceMidPass) {
  ClientOptions options = options_for(server_.target());
  options.max_batch = 10;
  Client client(loop_, options);
  run([&]() -> Task<void> {
    std::vector<TaskHandle<Value>> tasks;
    for (int i = 0; i < 25; ++i) tasks.push_back(numbered_echo(client, i));
    // Still in the pass that created them: two full batches are on their way.
    EXPECT_EQ(client.stats().create_calls, 2u);
    EXPECT_EQ(client.stats().created_tasks, 20u);
    co_await expect_numbered(std::move(tasks));
    EXPECT_EQ(client.stats().create_calls, 3u);
    EXPECT_EQ(client.stats().created_tasks, 25u);
  });
}

TEST_F(ClientTest, ABurstStartsWithFirstBatchAndDoublesUpToMaxBatch) {
  ClientOptions options = options_for(server_.target());
  options.first_batch = 2;
  options.max_batch = 10;
  Client client(loop_, options);
  run([&]() -> Task<void> {
    std::vector<TaskHandle<Value>> tasks;
    for (int i = 0; i < 25; ++i) tasks.push_back(numbered_echo(client, i));
    // Still in the pass that created them: batches of 2, 4, 8 and 10 are on
    // their way; the last task waits for the end of the pass.
    EXPECT_EQ(client.stats().create_calls, 4u);
    EXPECT_EQ(client.stats().created_tasks, 24u);
    co_await expect_numbered(std::move(tasks));
    EXPECT_EQ(client.stats().create_calls, 5u);
    EXPECT_EQ(client.stats().created_tasks, 25u);
  });
}

TEST_F(ClientTest, TasksCreatedOnePerPassAreAllCreatedAndFollowed) {
  run([&]() -> Task<void> {
    std::vector<TaskHandle<Value>> tasks;
    for (int i = 0; i < 200; ++i) {
      tasks.push_back(numbered_echo(client_, i));
      co_await sleep(0ms);  // The next one is created in a later pass.
    }
    co_await expect_numbered(std::move(tasks));
    EXPECT_EQ(client_.stats().created_tasks, 200u);
    // Those created while a call was in flight went together in the next.
    EXPECT_LE(client_.stats().create_calls, 200u);
    EXPECT_EQ(client_.stats().follow_streams, client_.stats().create_calls);
  });
}

TEST_F(ClientTest, CancellingBeforeTheCreationCallAnswersCancelsTheRemoteTask) {
  run([&]() -> Task<void> {
    RemoteTask task = client_.create_task("sleep", args(R"({"seconds": 30})"));
    EXPECT_FALSE(task.has_id());
    EXPECT_TRUE(task.cancel());
    EXPECT_THROW(co_await task.handle(), CancelledError);
    EXPECT_TRUE(task.has_id());
    if (!task.has_id()) co_return;
    EXPECT_EQ((co_await client_.get(task.id())).state(), v1::TASK_STATE_CANCELLED);
    EXPECT_EQ(task.record().value_or(v1::Task()).state(), v1::TASK_STATE_CANCELLED);
  });
}

TEST_F(ClientTest, CreatedIdAndRecordTellWhatTheServerSaid) {
  run([&]() -> Task<void> {
    RemoteTask good = client_.create_task("echo", args(R"({"value": "hi"})"));
    RemoteTask failing =
        client_.create_task("fail", args(R"({"message": "no luck", "type": "ValueError"})"));
    RemoteTask rejected = client_.create_task("sleep", args(R"({"seconds": -1})"));
    EXPECT_FALSE(good.record().has_value());
    std::string id = co_await good.created_id();
    EXPECT_EQ(id, good.id());
    EXPECT_EQ((co_await good).string_value(), "hi");
    std::optional<v1::Task> record = good.record();
    EXPECT_TRUE(record.has_value());
    if (!record) co_return;
    EXPECT_EQ(record->id(), id);
    EXPECT_EQ(record->state(), v1::TASK_STATE_SUCCEEDED);
    EXPECT_EQ(record->result().string_value(), "hi");
    EXPECT_THROW(co_await failing, RemoteTaskError);
    v1::Task failed = failing.record().value_or(v1::Task());
    EXPECT_EQ(failed.state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(failed.error().type(), "ValueError");
    EXPECT_EQ(failed.error().message(), "no luck");
    EXPECT_THROW(co_await rejected.created_id(), RequestRejected);
    EXPECT_FALSE(rejected.has_id());
    EXPECT_FALSE(rejected.record().has_value());
  });
}

// A server from before AsCompletedBatches: it creates tasks and streams
// their completions on AsCompleted only (each succeeds at once, its result
// its id); AsCompletedBatches answers UNIMPLEMENTED, as gRPC's default does.
class ServerWithoutBatches final : public v1::TaskService::CallbackService {
 public:
  std::atomic<int> as_completed_calls{0};

  grpc::ServerUnaryReactor* CreateTasks(grpc::CallbackServerContext* context,
                                        const v1::CreateTasksRequest* request,
                                        v1::CreateTasksResponse* response) override {
    for (int i = 0; i < request->tasks_size(); ++i) {
      v1::Task* task = response->add_tasks();
      task->set_id("old-" + std::to_string(next_id_++));
      task->set_state(v1::TASK_STATE_PENDING);
    }
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerWriteReactor<v1::Task>* AsCompleted(grpc::CallbackServerContext*,
                                                  const v1::AsCompletedRequest* request) override {
    ++as_completed_calls;
    return new Writer(*request);
  }

 private:
  class Writer final : public grpc::ServerWriteReactor<v1::Task> {
   public:
    explicit Writer(const v1::AsCompletedRequest& request) {
      for (const std::string& id : request.ids()) {
        v1::Task& task = tasks_.emplace_back();
        task.set_id(id);
        task.set_state(v1::TASK_STATE_SUCCEEDED);
        task.mutable_result()->set_string_value(id);
      }
      next();
    }
    void OnWriteDone(bool ok) override {
      if (ok) {
        next();
      } else {
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "stream closed"));
      }
    }
    void OnDone() override { delete this; }

   private:
    void next() {
      if (sent_ == tasks_.size()) {
        Finish(grpc::Status::OK);
      } else {
        StartWrite(&tasks_[sent_++]);
      }
    }
    std::vector<v1::Task> tasks_;
    std::size_t sent_ = 0;
  };

  std::atomic<int> next_id_{0};
};

TEST(ClientWithAnOlderServer, FollowsTasksOnAsCompletedWhenAsCompletedBatchesIsUnimplemented) {
  ServerWithoutBatches service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(port, 0) << "the test server did not start";
  EventLoop loop;
  Client client(loop, options_for("127.0.0.1:" + std::to_string(port)));
  auto body = [&]() -> Task<void> {
    RemoteTask a = client.create_task("echo");
    RemoteTask b = client.create_task("echo");
    auto first = co_await gather(a.handle(), b.handle());
    EXPECT_EQ(std::get<0>(first).string_value(), a.id());
    EXPECT_EQ(std::get<1>(first).string_value(), b.id());
    // One AsCompletedBatches (UNIMPLEMENTED), then AsCompleted.
    EXPECT_EQ(client.stats().follow_streams, 2u);
    RemoteTask c = client.create_task("echo");
    EXPECT_EQ((co_await c).string_value(), c.id());
    // The client remembers: straight to AsCompleted.
    EXPECT_EQ(client.stats().follow_streams, 3u);
    EXPECT_EQ(service.as_completed_calls.load(), 2);
  };
  loop.run(body());
  server->Shutdown();
}

TEST(ClientWithoutServer, AnUnreachableServerIsServerUnavailable) {
  EventLoop loop;
  ClientOptions options;
  options.target = "127.0.0.1:1";
  options.initial_backoff = 10ms;
  options.call_timeout = 5s;
  Client client(loop, options);
  auto body = [&]() -> Task<void> {
    EXPECT_THROW(co_await client.get("01ARZ3NDEKTSV4RRFFQ69G5FAV"), ServerUnavailable);
  };
  loop.run(body());
}

}  // namespace
}  // namespace taskwire::client
