// The dispatcher with the task manager, on virtual time: workers are fake
// streams that record what the server sends them.
#include "server/dispatcher.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "core/sleep.h"
#include "core/tests/test_loop.h"
#include "server/builtin_kinds.h"
#include "server/memory_task_store.h"
#include "server/task_manager.h"
#include "server/tests/stored_task.h"
#include "server/worker_kind.h"

// gtest's ASSERT_* return from the function, which a coroutine cannot.
#define CO_ASSERT_TRUE(condition)                       \
  do {                                                  \
    if (!(condition)) {                                 \
      ADD_FAILURE() << "assertion failed: " #condition; \
      co_return;                                        \
    }                                                   \
  } while (0)
#define CO_ASSERT_EQ(a, b) CO_ASSERT_TRUE((a) == (b))

namespace taskwire::server {
namespace {

using namespace std::chrono_literals;
using grpc::StatusCode;

Value json(const std::string& text) {
  Value value;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &value).ok()) << text;
  return value;
}

struct FakeStream final : WorkerStream {
  std::vector<v1::ServerMessage> sent;
  std::vector<Duration> sent_at;  // Loop time of each message.
  std::optional<grpc::Status> closed;
  bool batches_allowed = false;

  void allow_batches() override { batches_allowed = true; }
  void send(v1::ServerMessage message) override {
    sent.push_back(message);
    sent_at.push_back(EventLoop::current()->now().time_since_epoch());
  }
  std::vector<Duration> assigned_at() const {
    std::vector<Duration> out;
    for (std::size_t i = 0; i < sent.size(); ++i)
      if (sent[i].has_assignment()) out.push_back(sent_at[i]);
    return out;
  }
  void close(const grpc::Status& status) override { closed = status; }

  std::vector<v1::Assignment> assignments() const {
    std::vector<v1::Assignment> out;
    for (const auto& m : sent)
      if (m.has_assignment()) out.push_back(m.assignment());
    return out;
  }
  std::vector<v1::Cancel> cancels() const {
    std::vector<v1::Cancel> out;
    for (const auto& m : sent)
      if (m.has_cancel()) out.push_back(m.cancel());
    return out;
  }
  std::vector<v1::Rejection> rejections() const {
    std::vector<v1::Rejection> out;
    for (const auto& m : sent)
      if (m.has_rejection()) out.push_back(m.rejection());
    return out;
  }
};

v1::WorkerMessage hello(std::vector<std::string> kinds, std::uint32_t credits) {
  v1::WorkerMessage message;
  message.mutable_hello()->set_identity("test");
  for (auto& kind : kinds) message.mutable_hello()->add_kinds(kind);
  message.mutable_hello()->set_credits(credits);
  return message;
}

v1::WorkerMessage result(const v1::TaskToken& token, const std::string& value_json) {
  v1::WorkerMessage message;
  *message.mutable_result()->mutable_token() = token;
  *message.mutable_result()->mutable_result() = json(value_json);
  return message;
}

v1::WorkerMessage failure(const v1::TaskToken& token, const std::string& type, bool non_retryable) {
  v1::WorkerMessage message;
  *message.mutable_failure()->mutable_token() = token;
  message.mutable_failure()->set_type(type);
  message.mutable_failure()->set_message("it broke");
  message.mutable_failure()->set_non_retryable(non_retryable);
  return message;
}

v1::WorkerMessage task_heartbeat(const v1::TaskToken& token) {
  v1::WorkerMessage message;
  *message.mutable_task_heartbeat()->mutable_token() = token;
  return message;
}

v1::DispatchOptions retries(std::uint32_t attempts) {
  v1::DispatchOptions options;
  options.mutable_retry_policy()->set_maximum_attempts(attempts);
  return options;
}

class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest() {
    add_builtin_kinds(kinds_, 1);
    options_.heartbeat_timeout = std::chrono::hours(10);
  }

  void make() {
    dispatcher_ = std::make_unique<Dispatcher>(v_.loop(), options_);
    worker_kinds_ = std::make_unique<WorkerKinds>(*dispatcher_, kinds_);
    kinds_.set_fallback(worker_kinds_.get());
    manager_ = std::make_unique<TaskManager>(v_.loop(), kinds_, store_, Limits{}, 7);
  }

  template <typename F>
  void run(F body) {
    if (!manager_) make();
    v_.loop().set_exception_handler([](const std::string&, std::exception_ptr) {});
    v_.run(body());
  }

  Dispatcher& dispatcher() { return *dispatcher_; }
  Duration now() const { return v_.elapsed(); }

  // Lets the loop run what is ready, without letting time pass.
  static Task<void> turns() {
    for (int i = 0; i < 10; ++i) co_await sleep(0s);
  }

  Dispatcher::WorkerId connect(FakeStream& stream, const std::string& kind, std::uint32_t credits) {
    Dispatcher::WorkerId id = dispatcher().attach(&stream);
    dispatcher().receive(id, hello({kind}, credits));
    return id;
  }

  Task<grpc::Status> create(const std::string& kind, const v1::DispatchOptions& dispatch,
                            v1::Task* task) {
    v1::CreateTaskRequest request;
    request.set_kind(kind);
    *request.mutable_args() = json(R"({"n": 1})");
    *request.mutable_dispatch() = dispatch;
    co_return co_await manager_->create_task(request, task);
  }
  Task<std::string> create_ok(const std::string& kind, const v1::DispatchOptions& dispatch) {
    v1::Task task;
    grpc::Status status = co_await create(kind, dispatch, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    co_return task.id();
  }
  Task<std::string> create_ok(const std::string& kind) {
    v1::DispatchOptions none;
    co_return co_await create_ok(kind, none);
  }

  v1::Task get(const std::string& id) {
    v1::GetTaskRequest request;
    request.set_id(id);
    v1::Task task;
    EXPECT_TRUE(manager_->get_task(request, &task).ok());
    return task;
  }

  Task<v1::Task> cancel(const std::string& id) {
    v1::CancelTaskRequest request;
    request.set_id(id);
    v1::Task task;
    EXPECT_TRUE((co_await manager_->cancel_task(request, &task)).ok());
    co_return task;
  }

  testing::VirtualLoop v_;
  // Streams outlive the dispatcher's attempts, which the loop's shutdown
  // may withdraw.
  FakeStream a_, b_, c_;
  KindRegistry kinds_;
  DispatcherOptions options_;
  MemoryTaskStore store_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<WorkerKinds> worker_kinds_;
  std::unique_ptr<TaskManager> manager_;
};

TEST_F(DispatcherTest, ATaskWaitsPendingForAWorkerThenRunsAndSucceeds) {
  run([&]() -> Task<void> {
    std::string id = co_await create_ok("resize");
    co_await turns();
    EXPECT_EQ(get(id).state(), v1::TASK_STATE_PENDING);
    EXPECT_EQ(dispatcher().queued("resize"), 1u);
    auto worker = connect(a_, "resize", 4);
    CO_ASSERT_TRUE(a_.sent.at(0).has_welcome());
    CO_ASSERT_EQ(a_.assignments().size(), 1u);
    const v1::Assignment assignment = a_.assignments()[0];
    EXPECT_EQ(assignment.token().task_id(), id);
    EXPECT_EQ(assignment.token().attempt(), 1u);
    EXPECT_EQ(assignment.kind(), "resize");
    EXPECT_EQ(assignment.args().struct_value().fields().at("n").number_value(), 1);
    co_await turns();
    EXPECT_EQ(get(id).state(), v1::TASK_STATE_RUNNING);
    EXPECT_EQ(get(id).attempt(), 1u);
    dispatcher().receive(worker, result(assignment.token(), R"({"ok": true})"));
    co_await turns();
    v1::Task task = get(id);
    EXPECT_EQ(task.state(), v1::TASK_STATE_SUCCEEDED);
    EXPECT_TRUE(task.result().struct_value().fields().at("ok").bool_value());
  });
}

TEST_F(DispatcherTest, BatchesAreOfferedAndUsedOnlyWithAWorkerThatSaysItTakesThem) {
  run([&]() -> Task<void> {
    connect(a_, "k", 1);
    Dispatcher::WorkerId id = dispatcher().attach(&b_);
    v1::WorkerMessage greeting = hello({"k"}, 1);
    greeting.mutable_hello()->set_batches(true);
    dispatcher().receive(id, greeting);
    CO_ASSERT_TRUE(a_.sent.at(0).has_welcome());
    CO_ASSERT_TRUE(b_.sent.at(0).has_welcome());
    // The server takes batches from anyone; it sends them only to b.
    EXPECT_TRUE(a_.sent[0].welcome().batches());
    EXPECT_TRUE(b_.sent[0].welcome().batches());
    EXPECT_FALSE(a_.batches_allowed);
    EXPECT_TRUE(b_.batches_allowed);
  });
}

TEST_F(DispatcherTest, EachMessageOfAWorkerBatchIsHandledInTurn) {
  run([&]() -> Task<void> {
    auto worker = connect(a_, "k", 3);
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) ids.push_back(co_await create_ok("k"));
    co_await turns();
    CO_ASSERT_EQ(a_.assignments().size(), 3u);
    v1::WorkerMessage batch;
    *batch.mutable_batch()->add_messages() = result(a_.assignments()[0].token(), "0");
    *batch.mutable_batch()->add_messages() = failure(a_.assignments()[1].token(), "Bad", true);
    *batch.mutable_batch()->add_messages() = task_heartbeat(a_.assignments()[2].token());
    *batch.mutable_batch()->add_messages() = result(a_.assignments()[2].token(), "2");
    // A stale token in a batch is rejected like one alone; the rest apply.
    *batch.mutable_batch()->add_messages() = result(a_.assignments()[0].token(), "9");
    dispatcher().receive(worker, batch);
    co_await turns();
    EXPECT_EQ(get(ids[0]).state(), v1::TASK_STATE_SUCCEEDED);
    EXPECT_EQ(get(ids[0]).result().number_value(), 0);
    EXPECT_EQ(get(ids[1]).state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(get(ids[1]).error().type(), "Bad");
    EXPECT_EQ(get(ids[2]).state(), v1::TASK_STATE_SUCCEEDED);
    EXPECT_EQ(get(ids[2]).result().number_value(), 2);
    CO_ASSERT_EQ(a_.rejections().size(), 1u);
    EXPECT_EQ(a_.rejections()[0].field(), "result.token");
    EXPECT_FALSE(a_.closed.has_value());
  });
}

TEST_F(DispatcherTest, AssignmentsNeverExceedTheWorkersCredits) {
  run([&]() -> Task<void> {
    auto worker = connect(a_, "k", 2);
    for (int i = 0; i < 3; ++i) co_await create_ok("k");
    co_await turns();
    CO_ASSERT_EQ(a_.assignments().size(), 2u);
    EXPECT_EQ(dispatcher().queued("k"), 1u);
    dispatcher().receive(worker, result(a_.assignments()[0].token(), "1"));
    co_await turns();
    EXPECT_EQ(a_.assignments().size(), 3u);
  });
}

TEST_F(DispatcherTest, WorkersOfAKindShareTasksEvenly) {
  run([&]() -> Task<void> {
    connect(a_, "k", 10);
    connect(b_, "k", 10);
    for (int i = 0; i < 6; ++i) co_await create_ok("k");
    co_await turns();
    EXPECT_EQ(a_.assignments().size(), 3u);
    EXPECT_EQ(b_.assignments().size(), 3u);
  });
}

TEST_F(DispatcherTest, TheLeastLoadedWorkerTakesTheNextTask) {
  run([&]() -> Task<void> {
    auto a = connect(a_, "k", 10);
    for (int i = 0; i < 3; ++i) co_await create_ok("k");
    co_await turns();
    CO_ASSERT_EQ(a_.assignments().size(), 3u);
    connect(b_, "k", 10);
    dispatcher().receive(a, result(a_.assignments()[0].token(), "1"));
    for (int i = 0; i < 2; ++i) co_await create_ok("k");
    co_await turns();
    EXPECT_EQ(a_.assignments().size(), 3u);
    EXPECT_EQ(b_.assignments().size(), 2u);
  });
}

TEST_F(DispatcherTest, ALostWorkersTaskIsRedispatchedAsTheNextAttempt) {
  run([&]() -> Task<void> {
    auto a = connect(a_, "k", 1);
    std::string id = co_await create_ok("k");
    co_await turns();
    CO_ASSERT_EQ(a_.assignments().size(), 1u);
    auto b = connect(b_, "k", 1);
    dispatcher().detach(a);
    co_await turns();
    EXPECT_EQ(get(id).state(), v1::TASK_STATE_PENDING);
    EXPECT_EQ(get(id).attempt(), 1u);
    co_await sleep(1s);  // The default retry policy's first interval.
    CO_ASSERT_EQ(b_.assignments().size(), 1u);
    EXPECT_EQ(b_.assignments()[0].token().attempt(), 2u);
    EXPECT_EQ(get(id).state(), v1::TASK_STATE_RUNNING);
    EXPECT_EQ(get(id).attempt(), 2u);
    dispatcher().receive(b, result(b_.assignments()[0].token(), "2"));
    co_await turns();
    EXPECT_EQ(get(id).state(), v1::TASK_STATE_SUCCEEDED);
    EXPECT_EQ(get(id).result().number_value(), 2);
  });
}

TEST_F(DispatcherTest, ALostWorkerFailsTheTaskOnceAttemptsAreExhausted) {
  run([&]() -> Task<void> {
    auto a = connect(a_, "k", 1);
    std::string id = co_await create_ok("k", retries(1));
    co_await turns();
    dispatcher().detach(a);
    co_await turns();
    v1::Task task = get(id);
    EXPECT_EQ(task.state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(task.error().type(), "WorkerLost");
    EXPECT_NE(task.error().message().find("was lost (its stream ended)"), std::string::npos)
        << task.error().message();
    EXPECT_NE(task.error().message().find("attempt 1 of 1; no attempts left"), std::string::npos)
        << task.error().message();
  });
}

TEST_F(DispatcherTest, ASilentWorkerIsDroppedAfterTheHeartbeatTimeout) {
  options_.heartbeat_timeout = 10s;
  make();
  run([&]() -> Task<void> {
    auto a = connect(a_, "k", 1);
    std::string id = co_await create_ok("k", retries(1));
    co_await sleep(6s);
    v1::WorkerMessage beat;
    beat.mutable_heartbeat();
    dispatcher().receive(a, beat);
    co_await sleep(9s);  // 15 s in, 9 s after the last message.
    EXPECT_FALSE(a_.closed.has_value());
    EXPECT_EQ(get(id).state(), v1::TASK_STATE_RUNNING);
    co_await sleep(1s);
    CO_ASSERT_TRUE(a_.closed.has_value());
    EXPECT_EQ(a_.closed->error_code(), StatusCode::UNAVAILABLE);
    co_await turns();
    EXPECT_EQ(get(id).state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(get(id).error().type(), "WorkerLost");
    EXPECT_EQ(now(), 16s);
  });
}

TEST_F(DispatcherTest, FailedAttemptsAreRetriedWithExponentialBackoff) {
  run([&]() -> Task<void> {
    auto a = connect(a_, "k", 1);
    v1::DispatchOptions options = retries(4);
    options.mutable_retry_policy()->mutable_initial_interval()->set_seconds(1);
    options.mutable_retry_policy()->set_backoff_coefficient(3);
    options.mutable_retry_policy()->mutable_maximum_interval()->set_seconds(5);
    std::string id = co_await create_ok("k", options);
    std::vector<Duration> failed_at;
    for (std::size_t n = 1; n <= 4; ++n) {
      while (a_.assignments().size() < n) co_await sleep(10ms);
      failed_at.push_back(now());
      dispatcher().receive(a, failure(a_.assignments()[n - 1].token(), "Flaky", false));
    }
    co_await turns();
    std::vector<Duration> waits;
    for (std::size_t n = 1; n < 4; ++n) waits.push_back(a_.assigned_at()[n] - failed_at[n - 1]);
    // 1 s, 3 s, then 9 s capped at 5 s.
    EXPECT_EQ(waits, (std::vector<Duration>{1s, 3s, 5s}));
    v1::Task task = get(id);
    EXPECT_EQ(task.state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(task.error().type(), "Flaky");
    EXPECT_EQ(task.attempt(), 4u);
  });
}

TEST_F(DispatcherTest, NonRetryableErrorsAreNotRetried) {
  run([&]() -> Task<void> {
    auto a = connect(a_, "k", 1);
    v1::DispatchOptions options;
    options.mutable_retry_policy()->add_non_retryable_error_types("BadInput");
    std::string by_type = co_await create_ok("k", options);
    std::string by_flag = co_await create_ok("k", options);
    co_await turns();
    dispatcher().receive(a, failure(a_.assignments()[0].token(), "BadInput", false));
    co_await turns();
    dispatcher().receive(a, failure(a_.assignments()[1].token(), "Other", true));
    co_await turns();
    EXPECT_EQ(get(by_type).state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(get(by_type).error().type(), "BadInput");
    EXPECT_EQ(get(by_flag).state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(get(by_flag).error().message(), "it broke");
    EXPECT_EQ(a_.assignments().size(), 2u);
  });
}

TEST_F(DispatcherTest, ScheduleToStartTimeoutFailsATaskNoWorkerTook) {
  run([&]() -> Task<void> {
    v1::DispatchOptions options;
    options.mutable_schedule_to_start_timeout()->set_seconds(5);
    std::string id = co_await create_ok("k", options);
    co_await sleep(4900ms);
    EXPECT_EQ(get(id).state(), v1::TASK_STATE_PENDING);
    co_await sleep(100ms);
    co_await turns();
    v1::Task task = get(id);
    EXPECT_EQ(task.state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(task.error().type(), "TimeoutError");
    EXPECT_NE(task.error().message().find("schedule_to_start_timeout of 5s"), std::string::npos);
    EXPECT_EQ(dispatcher().queued("k"), 0u);
  });
}

TEST_F(DispatcherTest, StartToCloseTimeoutCancelsTheAttemptAndRetries) {
  run([&]() -> Task<void> {
    auto a = connect(a_, "k", 1);
    v1::DispatchOptions options = retries(2);
    options.mutable_start_to_close_timeout()->set_seconds(3);
    std::string id = co_await create_ok("k", options);
    co_await turns();
    CO_ASSERT_EQ(a_.assignments().size(), 1u);
    EXPECT_EQ(a_.assignments()[0].start_to_close_timeout().seconds(), 3);
    co_await sleep(3s);
    CO_ASSERT_EQ(a_.cancels().size(), 1u);
    EXPECT_EQ(a_.cancels()[0].reason(), "start_to_close_timeout");
    // The late result is stale; answering frees the credit for attempt 2.
    dispatcher().receive(a, result(a_.assignments()[0].token(), "1"));
    CO_ASSERT_EQ(a_.rejections().size(), 1u);
    EXPECT_EQ(a_.rejections()[0].field(), "result.token");
    EXPECT_NE(a_.rejections()[0].reason().find("stale token"), std::string::npos);
    co_await sleep(1s);
    co_await turns();
    CO_ASSERT_EQ(a_.assignments().size(), 2u);
    EXPECT_EQ(a_.assignments()[1].token().attempt(), 2u);
    EXPECT_EQ(a_.assigned_at()[1], 4s);
    co_await sleep(3s);
    co_await turns();
    EXPECT_EQ(get(id).state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(get(id).error().type(), "TimeoutError");
  });
}

TEST_F(DispatcherTest, TaskHeartbeatsKeepAnAttemptAliveUntilTheyStop) {
  run([&]() -> Task<void> {
    auto a = connect(a_, "k", 1);
    v1::DispatchOptions options = retries(1);
    options.mutable_heartbeat_timeout()->set_seconds(2);
    std::string id = co_await create_ok("k", options);
    co_await turns();
    const v1::TaskToken token = a_.assignments().at(0).token();
    for (int i = 0; i < 5; ++i) {
      co_await sleep(1500ms);
      dispatcher().receive(a, task_heartbeat(token));
    }
    EXPECT_EQ(get(id).state(), v1::TASK_STATE_RUNNING);
    EXPECT_FALSE(get(id).has_progress());
    v1::WorkerMessage progress = task_heartbeat(token);
    *progress.mutable_task_heartbeat()->mutable_details() = json(R"({"done": 0.5})");
    dispatcher().receive(a, progress);
    EXPECT_EQ(get(id).progress().struct_value().fields().at("done").number_value(), 0.5);
    co_await sleep(2s);
    co_await turns();
    EXPECT_EQ(get(id).state(), v1::TASK_STATE_FAILED);
    EXPECT_NE(get(id).error().message().find("heartbeat_timeout of 2s"), std::string::npos);
    EXPECT_EQ(now(), 9500ms);
  });
}

TEST_F(DispatcherTest, CancellingARunningTaskTellsItsWorkerAndFencesTheToken) {
  run([&]() -> Task<void> {
    auto a = connect(a_, "k", 1);
    std::string id = co_await create_ok("k");
    std::string queued = co_await create_ok("k");
    co_await turns();
    const v1::TaskToken token = a_.assignments().at(0).token();
    v1::Task cancelled = co_await cancel(id);
    EXPECT_EQ(cancelled.state(), v1::TASK_STATE_CANCELLED);
    CO_ASSERT_EQ(a_.cancels().size(), 1u);
    EXPECT_EQ(a_.cancels()[0].token().task_id(), id);
    EXPECT_EQ(a_.cancels()[0].reason(), "cancelled");
    // The credit stays in use until the worker answers the cancel.
    co_await turns();
    EXPECT_EQ(a_.assignments().size(), 1u);
    v1::WorkerMessage ack = failure(token, "CancelledError", false);
    ack.mutable_failure()->set_cancelled(true);
    dispatcher().receive(a, ack);
    co_await turns();
    EXPECT_TRUE(a_.rejections().empty());
    CO_ASSERT_EQ(a_.assignments().size(), 2u);
    EXPECT_EQ(a_.assignments()[1].token().task_id(), queued);
    EXPECT_EQ(get(id).state(), v1::TASK_STATE_CANCELLED);
  });
}

TEST_F(DispatcherTest, CancellingAPendingTaskTakesItOutOfTheQueue) {
  run([&]() -> Task<void> {
    std::string id = co_await create_ok("k");
    co_await turns();
    EXPECT_EQ(dispatcher().queued("k"), 1u);
    v1::Task cancelled = co_await cancel(id);
    EXPECT_EQ(cancelled.state(), v1::TASK_STATE_CANCELLED);
    EXPECT_EQ(dispatcher().queued("k"), 0u);
    connect(a_, "k", 1);
    co_await turns();
    EXPECT_TRUE(a_.assignments().empty());
  });
}

TEST_F(DispatcherTest, TheTasksOwnTimeoutStopsItsWorker) {
  run([&]() -> Task<void> {
    connect(a_, "k", 1);
    v1::CreateTaskRequest request;
    request.set_kind("k");
    request.mutable_timeout()->set_seconds(2);
    v1::Task task;
    EXPECT_TRUE((co_await manager_->create_task(request, &task)).ok());
    co_await sleep(2s);
    co_await turns();
    EXPECT_EQ(get(task.id()).state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(get(task.id()).error().type(), "TimeoutError");
    EXPECT_EQ(a_.cancels().size(), 1u);
  });
}

TEST_F(DispatcherTest, PerKindConcurrencyLimitHoldsAcrossWorkers) {
  options_.max_running_per_kind = 3;
  make();
  run([&]() -> Task<void> {
    auto a = connect(a_, "k", 10);
    connect(b_, "k", 10);
    for (int i = 0; i < 5; ++i) co_await create_ok("k");
    co_await turns();
    EXPECT_EQ(a_.assignments().size() + b_.assignments().size(), 3u);
    dispatcher().receive(a, result(a_.assignments()[0].token(), "1"));
    co_await turns();
    EXPECT_EQ(a_.assignments().size() + b_.assignments().size(), 4u);
  });
}

TEST_F(DispatcherTest, RefusingUnknownKindsNamesTheKnownOnes) {
  options_.refuse_unknown_kinds = true;
  make();
  run([&]() -> Task<void> {
    v1::Task task;
    v1::DispatchOptions none;
    grpc::Status status = co_await create("resize", none, &task);
    EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(),
              "kind: unknown kind 'resize': no connected worker runs it (--refuse-unknown-kinds); "
              "known kinds: echo, fail, sleep, wait_random");
    connect(a_, "resize", 1);
    status = co_await create("resize", none, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    status = co_await create("crop", none, &task);
    EXPECT_NE(status.error_message().find("known kinds: echo, fail, resize, sleep"),
              std::string::npos)
        << status.error_message();
  });
}

TEST_F(DispatcherTest, InvalidDispatchOptionsNameTheField) {
  run([&]() -> Task<void> {
    struct Case {
      std::string field;
      v1::DispatchOptions options;
    };
    std::vector<Case> cases(4);
    cases[0].field = "dispatch.start_to_close_timeout: ";
    cases[0].options.mutable_start_to_close_timeout()->set_seconds(-1);
    cases[1].field = "dispatch.retry_policy.backoff_coefficient: must be between 1 and 1000";
    cases[1].options.mutable_retry_policy()->set_backoff_coefficient(0.5);
    cases[2].field = "dispatch.retry_policy.maximum_interval: must not be less than";
    cases[2].options.mutable_retry_policy()->mutable_initial_interval()->set_seconds(10);
    cases[2].options.mutable_retry_policy()->mutable_maximum_interval()->set_seconds(1);
    cases[3].field = "dispatch.retry_policy.non_retryable_error_types[0]: must not be empty";
    cases[3].options.mutable_retry_policy()->add_non_retryable_error_types("");
    for (const Case& c : cases) {
      SCOPED_TRACE(c.field);
      v1::Task task;
      grpc::Status status = co_await create("k", c.options, &task);
      EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
      EXPECT_EQ(status.error_message().rfind(c.field, 0), 0u) << status.error_message();
    }
  });
}

TEST_F(DispatcherTest, MalformedConversationsEndTheStreamWithInvalidArgument) {
  struct Case {
    v1::WorkerMessage first;
    std::optional<v1::WorkerMessage> second;
    std::string message;
  };
  std::vector<Case> cases;
  v1::WorkerMessage beat;
  beat.mutable_heartbeat();
  cases.push_back({beat, std::nullopt, "message: the first message must be hello, got heartbeat"});
  cases.push_back({hello({"k"}, 0), std::nullopt, "hello.credits: must be at least 1"});
  cases.push_back(
      {hello({"k"}, 100001), std::nullopt, "hello.credits: at most 100000, got 100001"});
  cases.push_back({hello({}, 1), std::nullopt, "hello.kinds: must name at least one kind"});
  cases.push_back({hello({"k", ""}, 1), std::nullopt, "hello.kinds[1]: must not be empty"});
  cases.push_back({hello({"k", "j", "k"}, 1), std::nullopt, "hello.kinds[2]: 'k' is named twice"});
  cases.push_back(
      {hello({"k"}, 1), hello({"k"}, 1), "hello: sent twice: a stream says hello once"});
  cases.push_back(
      {v1::WorkerMessage(), std::nullopt, "message: empty: one field of the oneof must be set"});
  v1::WorkerMessage early_batch;
  *early_batch.mutable_batch()->add_messages() = beat;
  cases.push_back(
      {early_batch, std::nullopt, "message: the first message must be hello, got batch"});
  v1::WorkerMessage batched_hello;
  *batched_hello.mutable_batch()->add_messages() = beat;
  *batched_hello.mutable_batch()->add_messages() = hello({"k"}, 1);
  cases.push_back({hello({"k"}, 1), batched_hello, "batch.messages[1]: a batch holds no hello"});
  v1::WorkerMessage nested;
  *nested.mutable_batch()->add_messages() = early_batch;
  cases.push_back({hello({"k"}, 1), nested, "batch.messages[0]: a batch holds no batch"});
  v1::WorkerMessage oversized;
  for (int i = 0; i < 10001; ++i) *oversized.mutable_batch()->add_messages() = beat;
  cases.push_back(
      {hello({"k"}, 1), oversized, "batch.messages: at most 10000 messages, got 10001"});
  run([&]() -> Task<void> {
    // A healthy worker with a running task, which no bad stream may harm.
    auto good = connect(a_, "k", 1);
    std::string id = co_await create_ok("k");
    co_await turns();
    for (Case& c : cases) {
      SCOPED_TRACE(c.message);
      FakeStream stream;
      auto bad = dispatcher().attach(&stream);
      dispatcher().receive(bad, c.first);
      if (c.second) dispatcher().receive(bad, *c.second);
      CO_ASSERT_TRUE(stream.closed.has_value());
      EXPECT_EQ(stream.closed->error_code(), StatusCode::INVALID_ARGUMENT);
      EXPECT_EQ(stream.closed->error_message(), c.message);
      dispatcher().detach(bad);  // What the stream's end does: nothing more.
    }
    EXPECT_EQ(dispatcher().worker_count(), 1u);
    dispatcher().receive(good, result(a_.assignments().at(0).token(), "7"));
    co_await turns();
    EXPECT_EQ(get(id).state(), v1::TASK_STATE_SUCCEEDED);
  });
}

TEST_F(DispatcherTest, BadTokensAreRejectedAndHarmNoOtherTask) {
  options_.max_result_bytes = 100;
  make();
  run([&]() -> Task<void> {
    auto a = connect(a_, "k", 2);
    auto b = connect(b_, "k", 2);
    std::string first = co_await create_ok("k");
    std::string second = co_await create_ok("k");
    co_await turns();
    CO_ASSERT_EQ(a_.assignments().size(), 1u);
    CO_ASSERT_EQ(b_.assignments().size(), 1u);
    const v1::TaskToken a_token = a_.assignments()[0].token();
    const v1::TaskToken b_token = b_.assignments()[0].token();

    // b answers for a's task: rejected, a's task untouched.
    dispatcher().receive(b, result(a_token, "1"));
    CO_ASSERT_EQ(b_.rejections().size(), 1u);
    EXPECT_EQ(b_.rejections()[0].field(), "result.token");
    EXPECT_NE(b_.rejections()[0].reason().find("is assigned to another worker"), std::string::npos);
    // A token nobody holds, one with no task id, and one whose task id is
    // no task id at all.
    v1::TaskToken unknown = a_token;
    unknown.set_attempt(9);
    dispatcher().receive(a, result(unknown, "1"));
    dispatcher().receive(a, task_heartbeat(v1::TaskToken()));
    v1::TaskToken malformed = a_token;
    malformed.set_task_id("not-a-task-id");
    dispatcher().receive(a, result(malformed, "1"));
    CO_ASSERT_EQ(a_.rejections().size(), 3u);
    EXPECT_NE(a_.rejections()[0].reason().find("unknown token: this worker holds no attempt 9"),
              std::string::npos);
    EXPECT_EQ(a_.rejections()[1].field(), "task_heartbeat.token.task_id");
    EXPECT_EQ(a_.rejections()[1].reason(), "required");
    EXPECT_EQ(a_.rejections()[2].field(), "result.token");
    EXPECT_NE(a_.rejections()[2].reason().find("unknown token: this worker holds no attempt 1 of "
                                               "task not-a-task-id"),
              std::string::npos);
    co_await turns();
    EXPECT_EQ(get(first).state(), v1::TASK_STATE_RUNNING);

    // An oversized result fails that task only, for good.
    dispatcher().receive(b, result(b_token, "\"" + std::string(200, 'x') + "\""));
    CO_ASSERT_EQ(b_.rejections().size(), 2u);
    EXPECT_EQ(b_.rejections()[1].field(), "result.result");
    EXPECT_NE(b_.rejections()[1].reason().find("over the limit of 100 (--max-worker-result-bytes)"),
              std::string::npos);
    co_await turns();
    EXPECT_EQ(get(second).state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(get(second).error().type(), "ResultTooLarge");

    dispatcher().receive(a, result(a_token, "\"fine\""));
    co_await turns();
    EXPECT_EQ(get(first).state(), v1::TASK_STATE_SUCCEEDED);
    EXPECT_EQ(dispatcher().worker_count(), 2u);
  });
}

// Recovery: tasks a worker had when the server restarted.

TEST_F(DispatcherTest, ATaskAWorkerWasRunningAtARestartIsDispatchedAgainAsItsNextAttempt) {
  std::string id = store_task(store_, {.kind = "resize",
                                       .args_json = R"({"n": 1})",
                                       .state = v1::TASK_STATE_RUNNING,
                                       .attempt = 1,
                                       .created_ago = 3s,
                                       .started_ago = 3s,
                                       .maximum_attempts = 3});
  make();
  EXPECT_EQ(manager_->recover().running, 1u);
  run([&]() -> Task<void> {
    co_await turns();
    EXPECT_EQ(get(id).state(), v1::TASK_STATE_PENDING);
    EXPECT_EQ(dispatcher().queued("resize"), 1u);
    auto worker = connect(a_, "resize", 1);
    CO_ASSERT_EQ(a_.assignments().size(), 1u);
    const v1::Assignment assignment = a_.assignments()[0];
    EXPECT_EQ(assignment.token().task_id(), id);
    EXPECT_EQ(assignment.token().attempt(), 2u);
    dispatcher().receive(worker, result(assignment.token(), R"({"ok": true})"));
    co_await turns();
    v1::Task task = get(id);
    EXPECT_EQ(task.state(), v1::TASK_STATE_SUCCEEDED);
    EXPECT_EQ(task.attempt(), 2u);
  });
}

TEST_F(DispatcherTest, ATaskWhoseRunningAttemptWasItsLastFailsAsWorkerLostAtARestart) {
  std::string id = store_task(store_, {.kind = "resize",
                                       .args_json = R"({"n": 1})",
                                       .state = v1::TASK_STATE_RUNNING,
                                       .attempt = 2,
                                       .created_ago = 3s,
                                       .started_ago = 1s,
                                       .maximum_attempts = 2});
  make();
  manager_->recover();
  run([&]() -> Task<void> {
    co_await turns();
    v1::Task task = get(id);
    EXPECT_EQ(task.state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(task.error().type(), "WorkerLost");
    EXPECT_EQ(task.error().message(),
              "attempt 2 was running on a worker when the server restarted (attempt 2 of 2; no "
              "attempts left)");
    EXPECT_EQ(dispatcher().queued("resize"), 0u);
  });
}

TEST_F(DispatcherTest, ATaskWaitingToRetryAtARestartGoesOnWithItsNextAttempt) {
  std::string id = store_task(store_, {.kind = "resize",
                                       .args_json = R"({"n": 1})",
                                       .state = v1::TASK_STATE_PENDING,
                                       .attempt = 1,
                                       .created_ago = 3s,
                                       .started_ago = 2s,
                                       .maximum_attempts = 2});
  make();
  EXPECT_EQ(manager_->recover().pending, 1u);
  run([&]() -> Task<void> {
    auto worker = connect(a_, "resize", 1);
    co_await turns();
    CO_ASSERT_EQ(a_.assignments().size(), 1u);
    EXPECT_EQ(a_.assignments()[0].token().attempt(), 2u);
    dispatcher().receive(worker, failure(a_.assignments()[0].token(), "Oops", false));
    co_await turns();
    v1::Task task = get(id);
    EXPECT_EQ(task.state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(task.error().type(), "Oops");
    EXPECT_NE(task.error().message().find("attempt 2 of 2; no attempts left"), std::string::npos)
        << task.error().message();
  });
}

}  // namespace
}  // namespace taskwire::server
