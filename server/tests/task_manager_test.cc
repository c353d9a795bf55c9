#include "server/task_manager.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "core/event.h"
#include "core/sleep.h"
#include "core/tests/test_loop.h"
#include "server/builtin_kinds.h"
#include "server/memory_task_store.h"
#include "server/tests/stored_task.h"

namespace taskwire::server {
namespace {

using namespace std::chrono_literals;
using grpc::StatusCode;

Value json(const std::string& text) {
  Value value;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &value).ok()) << text;
  return value;
}

v1::CreateTaskRequest request(const std::string& kind, const std::string& args_json = "") {
  v1::CreateTaskRequest request;
  request.set_kind(kind);
  if (!args_json.empty()) *request.mutable_args() = json(args_json);
  return request;
}

// A manager on virtual time: every sleep takes no real time and the test
// reads exactly how much loop time passed.
class TaskManagerTest : public ::testing::Test {
 protected:
  TaskManagerTest() { add_builtin_kinds(kinds_, 1); }

  TaskManager& manager() {
    if (!manager_) manager_ = std::make_unique<TaskManager>(v_.loop(), kinds_, store_, limits_, 7);
    return *manager_;
  }
  Duration now() const { return v_.elapsed(); }

  template <typename F>
  void run(F body) {
    v_.loop().set_exception_handler([](const std::string&, std::exception_ptr) {});
    v_.run(body());
  }

  Task<v1::Task> create(const std::string& kind, const std::string& args_json) {
    v1::Task task;
    auto status = co_await manager().create_task(request(kind, args_json), &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    co_return task;
  }

  Task<v1::AwaitTaskResponse> await(const std::string& id) {
    v1::AwaitTaskRequest request;
    request.set_id(id);
    v1::AwaitTaskResponse response;
    auto status = co_await manager().await_task(request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    co_return response;
  }

  v1::Task get(const std::string& id) {
    v1::GetTaskRequest request;
    request.set_id(id);
    v1::Task task;
    auto status = manager().get_task(request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return task;
  }

  testing::VirtualLoop v_;
  KindRegistry kinds_;
  MemoryTaskStore store_;
  Limits limits_;
  std::unique_ptr<TaskManager> manager_;
};

TEST_F(TaskManagerTest, ATaskGoesFromPendingToRunningToSucceeded) {
  run([&]() -> Task<void> {
    v1::Task created = co_await create("sleep", R"({"seconds": 1.5})");
    EXPECT_EQ(created.state(), v1::TASK_STATE_PENDING);
    EXPECT_EQ(created.attempt(), 0u);
    EXPECT_EQ(created.id().size(), 26u);
    co_await sleep(0s);
    EXPECT_EQ(get(created.id()).state(), v1::TASK_STATE_RUNNING);
    auto done = co_await await(created.id());
    EXPECT_TRUE(done.done());
    EXPECT_EQ(done.task().state(), v1::TASK_STATE_SUCCEEDED);
    EXPECT_EQ(done.task().attempt(), 1u);
    EXPECT_EQ(done.task().result().kind_case(), Value::kNullValue);
    EXPECT_EQ(now(), 1500ms);
    auto elapsed = google::protobuf::util::TimeUtil::DurationToMilliseconds(
        done.task().finish_time() - done.task().start_time());
    EXPECT_EQ(elapsed, 1500);
  });
}

TEST_F(TaskManagerTest, BuiltInKindsReturnWhatTheyDocument) {
  run([&]() -> Task<void> {
    auto echo =
        co_await await((co_await create("echo", R"({"value": {"a": [1, "two", null]}})")).id());
    std::string text;
    EXPECT_TRUE(google::protobuf::util::MessageToJsonString(echo.task().result(), &text).ok());
    EXPECT_EQ(text, R"({"a":[1,"two",null]})");

    auto random = co_await await((co_await create("wait_random", R"({"max_delay": 2})")).id());
    double delay = random.task().result().number_value();
    EXPECT_GE(delay, 0.0);
    EXPECT_LE(delay, 2.0);

    auto failed = co_await await(
        (co_await create("fail", R"({"message": "no", "type": "ValueError"})")).id());
    EXPECT_EQ(failed.task().state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(failed.task().error().type(), "ValueError");
    EXPECT_EQ(failed.task().error().message(), "no");
  });
}

TEST_F(TaskManagerTest, GatherOfTwoAndOneSecondSleepsTakesTwoSeconds) {
  run([&]() -> Task<void> {
    v1::GatherRequest gather;
    gather.add_ids((co_await create("sleep", R"({"seconds": 2})")).id());
    gather.add_ids((co_await create("sleep", R"({"seconds": 1})")).id());
    v1::GatherResponse response;
    auto status = co_await manager().gather(gather, &response);
    EXPECT_TRUE(status.ok());
    EXPECT_TRUE(response.done());
    EXPECT_EQ(response.tasks_size(), 2);
    EXPECT_EQ(response.tasks(0).id(), gather.ids(0));
    EXPECT_EQ(now(), 2000ms);
  });
}

TEST_F(TaskManagerTest, TheOutcomeViewCarriesOnlyIdStateAttemptAndResultOrError) {
  run([&]() -> Task<void> {
    v1::GatherRequest gather;
    gather.add_ids((co_await create("echo", R"({"value": "x"})")).id());
    gather.add_ids((co_await create("fail", R"({"message": "no"})")).id());
    gather.set_return_exceptions(true);
    gather.set_view(v1::TASK_VIEW_OUTCOME);
    v1::GatherResponse response;
    auto status = co_await manager().gather(gather, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.tasks_size(), 2);
    if (response.tasks_size() != 2) co_return;
    const v1::Task& echoed = response.tasks(0);
    EXPECT_EQ(echoed.id(), gather.ids(0));
    EXPECT_EQ(echoed.state(), v1::TASK_STATE_SUCCEEDED);
    EXPECT_EQ(echoed.attempt(), 1u);
    EXPECT_EQ(echoed.result().string_value(), "x");
    EXPECT_TRUE(echoed.kind().empty());
    EXPECT_FALSE(echoed.has_args());
    EXPECT_FALSE(echoed.has_create_time());
    EXPECT_FALSE(echoed.has_finish_time());
    EXPECT_EQ(response.tasks(1).error().message(), "no");
    EXPECT_FALSE(response.tasks(1).has_args());
    // The full view, the default, still carries everything.
    gather.clear_view();
    v1::GatherResponse full;
    co_await manager().gather(gather, &full);
    EXPECT_EQ(full.tasks(0).kind(), "echo");
    EXPECT_TRUE(full.tasks(0).has_finish_time());

    v1::RunTaskRequest run_task;
    *run_task.mutable_task() = request("echo", R"({"value": 2})");
    run_task.set_view(v1::TASK_VIEW_OUTCOME);
    v1::AwaitTaskResponse ran;
    status = co_await manager().run_task(run_task, &ran);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(ran.done());
    EXPECT_EQ(ran.task().result().number_value(), 2);
    EXPECT_FALSE(ran.task().has_args());
  });
}

TEST_F(TaskManagerTest, AnUnknownViewIsRefusedAndNothingIsCreated) {
  run([&]() -> Task<void> {
    v1::CreateTasksRequest batch;
    *batch.add_tasks() = request("echo", R"({"value": 1})");
    batch.set_view(static_cast<v1::TaskView>(7));
    v1::CreateTasksResponse created;
    auto status = co_await manager().create_tasks(batch, &created);
    EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(),
              "view: unknown value 7; known values: TASK_VIEW_FULL (1), TASK_VIEW_OUTCOME (2)");
    EXPECT_EQ(store_.size(), 0u);

    v1::RunTaskRequest run_task;
    *run_task.mutable_task() = request("echo", R"({"value": 2})");
    run_task.set_view(static_cast<v1::TaskView>(-1));
    v1::AwaitTaskResponse ran;
    status = co_await manager().run_task(run_task, &ran);
    EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(store_.size(), 0u);
  });
}

TEST_F(TaskManagerTest, GatherStopsAtTheFirstFailureAndTheOthersKeepRunning) {
  run([&]() -> Task<void> {
    v1::GatherRequest gather;
    gather.add_ids((co_await create("sleep", R"({"seconds": 5})")).id());
    gather.add_ids((co_await create("fail", R"({"message": "bad"})")).id());
    v1::GatherResponse response;
    co_await manager().gather(gather, &response);
    EXPECT_TRUE(response.done());
    EXPECT_EQ(response.first_failure_id(), gather.ids(1));
    EXPECT_EQ(response.tasks(0).state(), v1::TASK_STATE_RUNNING);
    EXPECT_EQ(now(), 0s);

    gather.set_return_exceptions(true);
    response.Clear();
    co_await manager().gather(gather, &response);
    EXPECT_TRUE(response.first_failure_id().empty());
    EXPECT_EQ(response.tasks(0).state(), v1::TASK_STATE_SUCCEEDED);
    EXPECT_EQ(response.tasks(1).state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(now(), 5s);
  });
}

TEST_F(TaskManagerTest, ATimeoutFailsTheTaskAtItsDeadline) {
  run([&]() -> Task<void> {
    auto req = request("sleep", R"({"seconds": 10})");
    req.mutable_timeout()->set_seconds(3);
    v1::Task created;
    co_await manager().create_task(req, &created);
    auto done = co_await await(created.id());
    EXPECT_EQ(done.task().state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(done.task().error().type(), "TimeoutError");
    EXPECT_EQ(done.task().error().message(), "task exceeded its timeout of 3s");
    EXPECT_EQ(now(), 3s);
  });
}

TEST_F(TaskManagerTest, CancellingAPendingTaskMeansItNeverRuns) {
  run([&]() -> Task<void> {
    v1::Task created = co_await create("sleep", R"({"seconds": 10})");
    v1::CancelTaskRequest cancel;
    cancel.set_id(created.id());
    v1::Task cancelled;
    EXPECT_TRUE((co_await manager().cancel_task(cancel, &cancelled)).ok());
    EXPECT_EQ(cancelled.state(), v1::TASK_STATE_CANCELLED);
    EXPECT_EQ(cancelled.attempt(), 0u);
    EXPECT_FALSE(cancelled.has_start_time());
    // Cancelling again changes nothing.
    v1::Task again;
    EXPECT_TRUE((co_await manager().cancel_task(cancel, &again)).ok());
    EXPECT_EQ(again.finish_time().nanos(), cancelled.finish_time().nanos());
    EXPECT_EQ(now(), 0s);
  });
}

TEST_F(TaskManagerTest, CancellingARunningTaskWakesItsAwaitersWithCancelled) {
  run([&]() -> Task<void> {
    v1::Task created = co_await create("sleep", R"({"seconds": 10})");
    auto awaiter = v_.loop().create_task(await(created.id()));
    co_await sleep(1s);
    v1::CancelTaskRequest cancel;
    cancel.set_id(created.id());
    v1::Task cancelled;
    co_await manager().cancel_task(cancel, &cancelled);
    EXPECT_EQ(cancelled.state(), v1::TASK_STATE_CANCELLED);
    auto seen = co_await awaiter;
    EXPECT_EQ(seen.task().state(), v1::TASK_STATE_CANCELLED);
    EXPECT_EQ(now(), 1s);
  });
}

TEST_F(TaskManagerTest, AwaitWithAWaitLimitLeavesTheTaskRunning) {
  run([&]() -> Task<void> {
    v1::Task created = co_await create("sleep", R"({"seconds": 10})");
    v1::AwaitTaskRequest req;
    req.set_id(created.id());
    req.mutable_wait_timeout()->set_seconds(2);
    v1::AwaitTaskResponse response;
    co_await manager().await_task(req, &response);
    EXPECT_FALSE(response.done());
    EXPECT_EQ(response.task().state(), v1::TASK_STATE_RUNNING);
    EXPECT_EQ(now(), 2s);
    // A cancelled await (the client went away) leaves the task alone too.
    auto abandoned = v_.loop().create_task(await(created.id()));
    co_await sleep(1s);
    abandoned.cancel();
    co_await sleep(0s);
    EXPECT_EQ(get(created.id()).state(), v1::TASK_STATE_RUNNING);
  });
}

TEST_F(TaskManagerTest, AnIdempotencyKeyReturnsTheExistingTask) {
  run([&]() -> Task<void> {
    auto req = request("echo", R"({"value": 1})");
    req.set_idempotency_key("once");
    v1::Task first, second;
    co_await manager().create_task(req, &first);
    co_await manager().create_task(req, &second);
    EXPECT_EQ(first.id(), second.id());
    EXPECT_EQ(store_.size(), 1u);
  });
}

TEST_F(TaskManagerTest, FinishedTasksAreEvictedAfterTheirRetention) {
  limits_.retention = 10s;
  run([&]() -> Task<void> {
    v1::Task created = co_await create("echo", R"({"value": 1})");
    co_await await(created.id());
    co_await sleep(9s);
    EXPECT_EQ(get(created.id()).state(), v1::TASK_STATE_SUCCEEDED);
    co_await sleep(1s);
    v1::GetTaskRequest req;
    req.set_id(created.id());
    v1::Task task;
    auto status = manager().get_task(req, &task);
    EXPECT_EQ(status.error_code(), StatusCode::NOT_FOUND);
    EXPECT_NE(status.error_message().find("evicted after its retention period"), std::string::npos);
  });
}

TEST_F(TaskManagerTest, TheOldestFinishedTasksAreEvictedPastTheCountLimit) {
  limits_.max_retained_tasks = 2;
  run([&]() -> Task<void> {
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
      ids.push_back((co_await create("echo", R"({"value": 1})")).id());
      co_await await(ids.back());
    }
    co_await sleep(0s);
    EXPECT_EQ(store_.size(), 2u);
    EXPECT_TRUE(store_.evicted(*TaskId::parse(ids[0])));
  });
}

struct BadRequest {
  std::string name;
  v1::CreateTaskRequest request;
  StatusCode code;
  std::string message;
};

v1::CreateTaskRequest with_timeout(v1::CreateTaskRequest request, std::int64_t seconds,
                                   std::int32_t nanos) {
  request.mutable_timeout()->set_seconds(seconds);
  request.mutable_timeout()->set_nanos(nanos);
  return request;
}

v1::CreateTaskRequest with_nan_seconds() {
  auto request = ::taskwire::server::request("sleep", R"({"seconds": 1})");
  (*request.mutable_args()->mutable_struct_value()->mutable_fields())["seconds"].set_number_value(
      std::nan(""));
  return request;
}

TEST_F(TaskManagerTest, InvalidRequestsNameTheFieldAndTheRuleAndChangeNothing) {
  limits_.max_args_bytes = 64;
  std::vector<BadRequest> cases = {
      {"no kind", request(""), StatusCode::INVALID_ARGUMENT,
       "kind: required; known kinds: echo, fail, sleep, wait_random"},
      {"unknown kind", request("slep"), StatusCode::INVALID_ARGUMENT,
       "kind: unknown kind 'slep'; known kinds: echo, fail, sleep, wait_random"},
      {"missing args", request("sleep"), StatusCode::INVALID_ARGUMENT,
       "args: must be an object with seconds for kind 'sleep'"},
      {"missing field", request("sleep", "{}"), StatusCode::INVALID_ARGUMENT,
       "args.seconds: required"},
      {"unknown field", request("sleep", R"({"seconds": 1, "secs": 2})"),
       StatusCode::INVALID_ARGUMENT, "args.secs: unknown field; kind 'sleep' takes seconds"},
      {"wrong type", request("sleep", R"({"seconds": "1"})"), StatusCode::INVALID_ARGUMENT,
       "args.seconds: must be a number of seconds"},
      {"negative", request("sleep", R"({"seconds": -1})"), StatusCode::INVALID_ARGUMENT,
       "args.seconds: must not be negative"},
      {"NaN", with_nan_seconds(), StatusCode::INVALID_ARGUMENT, "args.seconds: must be finite"},
      {"too long", request("wait_random", R"({"max_delay": 1e12})"), StatusCode::INVALID_ARGUMENT,
       "args.max_delay: must be at most 31536000 (one year)"},
      {"fail without message", request("fail", R"({"type": "X"})"), StatusCode::INVALID_ARGUMENT,
       "args.message: required"},
      {"oversized args", request("echo", R"({"value": ")" + std::string(100, 'x') + R"("})"),
       StatusCode::RESOURCE_EXHAUSTED, "args: 115 bytes is over the limit of 64"},
      {"negative timeout", with_timeout(request("echo", R"({"value": 1})"), -1, 0),
       StatusCode::INVALID_ARGUMENT, "timeout: must be positive"},
      {"zero timeout", with_timeout(request("echo", R"({"value": 1})"), 0, 0),
       StatusCode::INVALID_ARGUMENT, "timeout: must be positive"},
      {"malformed timeout", with_timeout(request("echo", R"({"value": 1})"), 1, -5),
       StatusCode::INVALID_ARGUMENT,
       "timeout: malformed duration: nanos must be within (-1e9, 1e9) with the sign of seconds"},
  };
  run([&]() -> Task<void> {
    for (const auto& bad : cases) {
      SCOPED_TRACE(bad.name);
      v1::Task task;
      auto status = co_await manager().create_task(bad.request, &task);
      EXPECT_EQ(status.error_code(), bad.code);
      EXPECT_EQ(status.error_message(), bad.message);
    }
    EXPECT_EQ(store_.size(), 0u);
    EXPECT_EQ(manager().unfinished_count(), 0u);
  });
}

TEST_F(TaskManagerTest, CreateTasksIsAllOrNothing) {
  run([&]() -> Task<void> {
    v1::CreateTasksRequest batch;
    *batch.add_tasks() = request("echo", R"({"value": 1})");
    *batch.add_tasks() = request("sleep", R"({"seconds": -2})");
    v1::CreateTasksResponse response;
    auto status = co_await manager().create_tasks(batch, &response);
    EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(), "tasks[1].args.seconds: must not be negative");
    EXPECT_EQ(store_.size(), 0u);

    batch.mutable_tasks(1)->CopyFrom(request("sleep", R"({"seconds": 2})"));
    status = co_await manager().create_tasks(batch, &response);
    EXPECT_TRUE(status.ok());
    EXPECT_EQ(response.tasks_size(), 2);
    EXPECT_LT(response.tasks(0).id(), response.tasks(1).id());  // Time-ordered.
  });
}

v1::CreateTasksRequest keyed_batch(const std::string& key, int sleeps) {
  v1::CreateTasksRequest batch;
  batch.set_idempotency_key(key);
  for (int i = 0; i < sleeps; ++i) *batch.add_tasks() = request("sleep", R"({"seconds": 100})");
  return batch;
}

std::vector<std::string> ids_of(const v1::CreateTasksResponse& response) {
  std::vector<std::string> ids;
  for (const auto& task : response.tasks()) ids.push_back(task.id());
  return ids;
}

TEST_F(TaskManagerTest, AKeyedCreateTasksSentAgainAnswersWithTheSameTasksAndCreatesNone) {
  run([&]() -> Task<void> {
    v1::CreateTasksRequest batch = keyed_batch("batch-1", 3);
    v1::CreateTasksResponse first, again, other;
    v1::CreateTasksRequest retry = batch;
    EXPECT_TRUE((co_await manager().create_tasks(batch, &first)).ok());
    co_await sleep(5s);
    EXPECT_TRUE((co_await manager().create_tasks(retry, &again)).ok());
    EXPECT_EQ(ids_of(again), ids_of(first));
    EXPECT_EQ(store_.size(), 3u);
    EXPECT_EQ(again.tasks(2).state(), v1::TASK_STATE_RUNNING);
    // Another key is another call; the one before it does not join it.
    v1::CreateTasksRequest next = keyed_batch("batch-2", 2);
    EXPECT_TRUE((co_await manager().create_tasks(next, &other)).ok());
    EXPECT_EQ(other.tasks_size(), 2);
    EXPECT_EQ(store_.size(), 5u);
    v1::CreateTasksRequest retry_next = keyed_batch("batch-2", 2);
    v1::CreateTasksResponse again_next;
    EXPECT_TRUE((co_await manager().create_tasks(retry_next, &again_next)).ok());
    EXPECT_EQ(ids_of(again_next), ids_of(other));
  });
}

TEST_F(TaskManagerTest, AKeyedCreateTasksRefusesTaskKeysALongKeyAndAnotherCount) {
  run([&]() -> Task<void> {
    v1::CreateTasksResponse response;
    v1::CreateTasksRequest with_task_key = keyed_batch("batch", 2);
    with_task_key.mutable_tasks(1)->set_idempotency_key("mine");
    auto status = co_await manager().create_tasks(with_task_key, &response);
    EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(),
              "tasks[1].idempotency_key: must be empty when the call has an idempotency_key");
    v1::CreateTasksRequest long_key = keyed_batch(std::string(257, 'k'), 1);
    status = co_await manager().create_tasks(long_key, &response);
    EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(), "idempotency_key: must be at most 256 bytes, got 257");
    EXPECT_EQ(store_.size(), 0u);

    v1::CreateTasksRequest batch = keyed_batch("batch", 2);
    EXPECT_TRUE((co_await manager().create_tasks(batch, &response)).ok());
    v1::CreateTasksRequest bigger = keyed_batch("batch", 3);
    status = co_await manager().create_tasks(bigger, &response);
    EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(),
              "idempotency_key: already used by a CreateTasks call of 2 tasks; this call has 3");
    EXPECT_EQ(store_.size(), 2u);
  });
}

TEST_F(TaskManagerTest, AKeyedCreateTasksWhoseTasksWereEvictedSaysSo) {
  limits_.retention = 1s;
  run([&]() -> Task<void> {
    v1::CreateTasksRequest batch = keyed_batch("batch", 3);
    batch.mutable_tasks(1)->CopyFrom(request("echo", R"({"value": 1})"));
    v1::CreateTasksResponse response;
    EXPECT_TRUE((co_await manager().create_tasks(batch, &response)).ok());
    co_await sleep(2s);  // The echo has finished and is evicted; the sleeps run on.
    v1::CreateTasksRequest retry = keyed_batch("batch", 3);
    auto status = co_await manager().create_tasks(retry, &response);
    EXPECT_EQ(status.error_code(), StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(status.error_message(),
              "idempotency_key: 1 of the 3 tasks created with this key have been evicted; their "
              "ids are gone");
    EXPECT_EQ(store_.size(), 2u);
  });
}

TEST_F(TaskManagerTest, ThePendingLimitRefusesNewTasks) {
  limits_.max_pending_tasks = 2;
  run([&]() -> Task<void> {
    co_await create("sleep", R"({"seconds": 1})");
    co_await create("sleep", R"({"seconds": 1})");
    v1::Task task;
    auto status = co_await manager().create_task(request("sleep", R"({"seconds": 1})"), &task);
    EXPECT_EQ(status.error_code(), StatusCode::RESOURCE_EXHAUSTED);
    co_await sleep(2s);  // Once they finish, there is room again.
    EXPECT_TRUE(
        (co_await manager().create_task(request("sleep", R"({"seconds": 1})"), &task)).ok());
  });
}

TEST_F(TaskManagerTest, IdsAreCheckedForFormExistenceAndCount) {
  limits_.max_ids_per_request = 2;
  run([&]() -> Task<void> {
    v1::WaitRequest wait;
    v1::WaitResponse response;
    EXPECT_EQ((co_await manager().wait(wait, &response)).error_message(), "ids: must not be empty");
    wait.add_ids("not-an-id");
    EXPECT_EQ((co_await manager().wait(wait, &response)).error_message(),
              "ids[0]: 'not-an-id' is not a task id (26 characters of Crockford base32)");
    wait.set_ids(0, "01ARZ3NDEKTSV4RRFFQ69G5FAV");
    auto status = co_await manager().wait(wait, &response);
    EXPECT_EQ(status.error_code(), StatusCode::NOT_FOUND);
    EXPECT_EQ(status.error_message(), "ids[0]: no task '01ARZ3NDEKTSV4RRFFQ69G5FAV'");
    wait.add_ids("01ARZ3NDEKTSV4RRFFQ69G5FAV");
    wait.add_ids("01ARZ3NDEKTSV4RRFFQ69G5FAV");
    EXPECT_EQ((co_await manager().wait(wait, &response)).error_code(),
              StatusCode::RESOURCE_EXHAUSTED);
  });
}

TEST_F(TaskManagerTest, WaitReturnsDoneAndPendingAsAsked) {
  run([&]() -> Task<void> {
    v1::WaitRequest wait;
    for (int seconds : {3, 1, 2}) {
      wait.add_ids(
          (co_await create("sleep", "{\"seconds\": " + std::to_string(seconds) + "}")).id());
    }
    wait.set_return_when(v1::RETURN_WHEN_FIRST_COMPLETED);
    v1::WaitResponse response;
    co_await manager().wait(wait, &response);
    EXPECT_EQ(now(), 1s);
    EXPECT_EQ(response.done_size(), 1);
    EXPECT_EQ(response.done(0).id(), wait.ids(1));
    EXPECT_EQ(response.pending_ids_size(), 2);

    wait.set_return_when(v1::RETURN_WHEN_ALL_COMPLETED);
    wait.mutable_timeout()->set_nanos(500'000'000);
    response.Clear();
    co_await manager().wait(wait, &response);
    EXPECT_EQ(now(), 1500ms);
    EXPECT_EQ(response.done_size(), 1);

    wait.clear_timeout();
    wait.set_count(2);
    response.Clear();
    co_await manager().wait(wait, &response);
    EXPECT_EQ(now(), 2s);
    EXPECT_EQ(response.done_size(), 2);
  });
}

TEST_F(TaskManagerTest, AsCompletedEmitsInCompletionOrder) {
  run([&]() -> Task<void> {
    v1::AsCompletedRequest req;
    for (int seconds : {3, 1, 2}) {
      req.add_ids(
          (co_await create("sleep", "{\"seconds\": " + std::to_string(seconds) + "}")).id());
    }
    std::vector<std::string> order;
    auto status = co_await manager().as_completed(req, [&](const v1::Task& task) {
      order.push_back(task.id());
      return Sent(true);
    });
    EXPECT_TRUE(status.ok());
    EXPECT_EQ(order, (std::vector<std::string>{req.ids(1), req.ids(2), req.ids(0)}));
  });
}

// The ids of each message, in order.
using Runs = std::vector<std::vector<std::string>>;

TEST_F(TaskManagerTest, AsCompletedBatchesSendsTasksThatFinishTogetherInOneMessage) {
  run([&]() -> Task<void> {
    std::vector<std::string> ids;
    for (int seconds : {2, 1, 2, 0, 1})
      ids.push_back(
          (co_await create("sleep", "{\"seconds\": " + std::to_string(seconds) + "}")).id());
    co_await await(ids[3]);  // Finished before the call: it comes first, alone.
    v1::AsCompletedRequest req;
    for (const auto& id : ids) req.add_ids(id);
    req.add_ids(ids[1]);  // Repeats count once, as in AsCompleted.
    req.set_view(v1::TASK_VIEW_OUTCOME);
    Runs runs;
    std::vector<Duration> times;
    auto status = co_await manager().as_completed_batches(req, [&](v1::TaskBatch& batch) {
      auto& run = runs.emplace_back();
      for (const v1::Task& task : batch.tasks()) {
        run.push_back(task.id());
        EXPECT_EQ(task.state(), v1::TASK_STATE_SUCCEEDED) << task.id();
        EXPECT_TRUE(task.kind().empty()) << "the OUTCOME view asked for";
      }
      times.push_back(now());
      return Sent(true);
    });
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(runs, (Runs{{ids[3]}, {ids[1], ids[4]}, {ids[0], ids[2]}}));
    EXPECT_EQ(times, (std::vector<Duration>{0s, 1s, 2s}));
  });
}

TEST_F(TaskManagerTest, AsCompletedBatchesSplitsALongRunIntoMessagesOfAThousand) {
  run([&]() -> Task<void> {
    v1::CreateTasksRequest create;
    for (int i = 0; i < 2500; ++i) *create.add_tasks() = request("sleep", R"({"seconds": 1})");
    v1::CreateTasksResponse created;
    auto made = co_await manager().create_tasks(create, &created);
    EXPECT_TRUE(made.ok()) << made.error_message();
    v1::AsCompletedRequest req;
    for (const v1::Task& task : created.tasks()) req.add_ids(task.id());
    std::vector<int> sizes;
    std::set<std::string> seen;
    auto status = co_await manager().as_completed_batches(req, [&](v1::TaskBatch& batch) {
      sizes.push_back(batch.tasks_size());
      for (const v1::Task& task : batch.tasks()) seen.insert(task.id());
      return Sent(true);
    });
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(sizes, (std::vector<int>{1000, 1000, 500}));
    EXPECT_EQ(seen.size(), 2500u);
    EXPECT_EQ(now(), 1s);
  });
}

TEST_F(TaskManagerTest, AsCompletedBatchesKeepsAMessageToAboutOneMebibyte) {
  run([&]() -> Task<void> {
    const std::string big(60'000, 'x');
    v1::CreateTasksRequest create;
    for (int i = 0; i < 40; ++i)
      *create.add_tasks() = request("echo", "{\"value\": \"" + big + "\"}");
    v1::CreateTasksResponse created;
    auto made = co_await manager().create_tasks(create, &created);
    EXPECT_TRUE(made.ok()) << made.error_message();
    v1::AsCompletedRequest req;
    for (const v1::Task& task : created.tasks()) req.add_ids(task.id());
    req.set_view(v1::TASK_VIEW_OUTCOME);  // 60 kB of result per task.
    std::vector<std::size_t> bytes;
    int tasks = 0;
    auto status = co_await manager().as_completed_batches(req, [&](v1::TaskBatch& batch) {
      bytes.push_back(batch.ByteSizeLong());
      tasks += batch.tasks_size();
      return Sent(true);
    });
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(tasks, 40);
    EXPECT_GE(bytes.size(), 3u) << "2.4 MB of results";
    for (std::size_t size : bytes) EXPECT_LE(size, (1u << 20) + 61'000) << "one task past 1 MiB";
  });
}

TEST_F(TaskManagerTest, AsCompletedBatchesEndsWithDeadlineExceededOnceItsTimeoutPasses) {
  run([&]() -> Task<void> {
    v1::AsCompletedRequest req;
    req.add_ids((co_await create("sleep", R"({"seconds": 1})")).id());
    req.add_ids((co_await create("sleep", R"({"seconds": 5})")).id());
    req.mutable_timeout()->set_seconds(2);
    Runs runs;
    auto status = co_await manager().as_completed_batches(req, [&](v1::TaskBatch& batch) {
      auto& run = runs.emplace_back();
      for (const v1::Task& task : batch.tasks()) run.push_back(task.id());
      return Sent(true);
    });
    EXPECT_EQ(status.error_code(), StatusCode::DEADLINE_EXCEEDED) << status.error_message();
    EXPECT_EQ(status.error_message().rfind("timeout: 1 task(s) still unfinished", 0), 0u)
        << status.error_message();
    EXPECT_EQ(runs, (Runs{{req.ids(0)}}));
    EXPECT_EQ(now(), 2s);
    EXPECT_EQ(get(req.ids(1)).state(), v1::TASK_STATE_RUNNING) << "a timeout cancels nothing";
  });
}

TEST_F(TaskManagerTest, AsCompletedBatchesRejectsWhatAsCompletedRejectsNamingTheField) {
  run([&]() -> Task<void> {
    const std::string id = (co_await create("sleep", R"({"seconds": 1})")).id();
    struct Case {
      const char* what;
      std::function<void(v1::AsCompletedRequest&)> change;
      StatusCode code;
      const char* prefix;
    };
    const std::vector<Case> cases = {
        {"a malformed id", [](auto& r) { r.add_ids("bad"); }, StatusCode::INVALID_ARGUMENT,
         "ids[1]:"},
        {"an unknown id", [](auto& r) { r.add_ids("01ARZ3NDEKTSV4RRFFQ69G5FAV"); },
         StatusCode::NOT_FOUND, "ids[1]:"},
        {"a negative timeout", [](auto& r) { r.mutable_timeout()->set_seconds(-1); },
         StatusCode::INVALID_ARGUMENT, "timeout:"},
        {"an unknown view", [](auto& r) { r.set_view(static_cast<v1::TaskView>(7)); },
         StatusCode::INVALID_ARGUMENT, "view:"},
    };
    for (const Case& c : cases) {
      SCOPED_TRACE(c.what);
      v1::AsCompletedRequest req;
      req.add_ids(id);
      c.change(req);
      int messages = 0;
      auto status = co_await manager().as_completed_batches(req, [&](v1::TaskBatch&) {
        ++messages;
        return Sent(true);
      });
      EXPECT_EQ(status.error_code(), c.code) << status.error_message();
      EXPECT_EQ(status.error_message().rfind(c.prefix, 0), 0u) << status.error_message();
      EXPECT_EQ(messages, 0);
    }
    EXPECT_EQ(now(), 0s) << "a rejected request waits for nothing";
  });
}

TEST_F(TaskManagerTest, WatchersSeeEachStateChangeOfMatchingTasks) {
  run([&]() -> Task<void> {
    std::vector<std::pair<v1::TaskState, v1::TaskState>> seen;
    v1::WatchTasksRequest req;
    req.set_kind("echo");
    auto watch = v_.loop().create_task(manager().watch_tasks(req, [&](const v1::TaskEvent& event) {
      seen.emplace_back(event.previous_state(), event.task().state());
      return Sent(true);
    }));
    co_await sleep(0s);
    co_await create("sleep", R"({"seconds": 1})");  // Not watched.
    co_await await((co_await create("echo", R"({"value": 1})")).id());
    co_await sleep(0s);
    manager().stop_accepting();
    EXPECT_TRUE((co_await watch).ok());
    using S = v1::TaskState;
    EXPECT_EQ(seen,
              (std::vector<std::pair<S, S>>{{v1::TASK_STATE_UNSPECIFIED, v1::TASK_STATE_PENDING},
                                            {v1::TASK_STATE_PENDING, v1::TASK_STATE_RUNNING},
                                            {v1::TASK_STATE_RUNNING, v1::TASK_STATE_SUCCEEDED}}));
  });
}

TEST_F(TaskManagerTest, ListTasksFiltersAndPages) {
  run([&]() -> Task<void> {
    for (int i = 0; i < 5; ++i) co_await create("echo", R"({"value": 1})");
    auto labelled = request("sleep", R"({"seconds": 9})");
    (*labelled.mutable_labels())["team"] = "a";
    v1::Task sleeper;
    co_await manager().create_task(labelled, &sleeper);
    co_await sleep(1s);

    v1::ListTasksRequest req;
    req.set_page_size(2);
    std::vector<std::string> all;
    do {
      v1::ListTasksResponse page;
      EXPECT_TRUE(manager().list_tasks(req, &page).ok());
      for (const auto& task : page.tasks()) all.push_back(task.id());
      req.set_page_token(page.next_page_token());
    } while (!req.page_token().empty());
    EXPECT_EQ(all.size(), 6u);
    EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));

    v1::ListTasksRequest running;
    running.add_states(v1::TASK_STATE_RUNNING);
    (*running.mutable_labels())["team"] = "a";
    v1::ListTasksResponse page;
    manager().list_tasks(running, &page);
    EXPECT_EQ(page.tasks_size(), 1);
    EXPECT_EQ(page.tasks(0).id(), sleeper.id());

    running.add_states(static_cast<v1::TaskState>(42));
    EXPECT_EQ(manager().list_tasks(running, &page).error_message(), "states[1]: unknown state 42");
  });
}

TEST_F(TaskManagerTest, AfterStopAcceptingNewTasksAreRefused) {
  run([&]() -> Task<void> {
    manager().stop_accepting();
    v1::Task task;
    auto status = co_await manager().create_task(request("echo", R"({"value": 1})"), &task);
    EXPECT_EQ(status.error_code(), StatusCode::UNAVAILABLE);
  });
}

// Recovery: the manager takes over what a previous server process left in
// its store (as a durable store hands it back at start-up).

TEST_F(TaskManagerTest, ARecoveredRunningSleepRunsAgainAsItsNextAttemptAndKeepsItsDeadline) {
  std::string id = store_task(store_, {.kind = "sleep",
                                       .args_json = R"({"seconds": 10})",
                                       .state = v1::TASK_STATE_RUNNING,
                                       .attempt = 1,
                                       .created_ago = 4s,
                                       .started_ago = 4s});
  const std::int64_t started = store_.find(*TaskId::parse(id))->start_unix_nanos;
  TaskManager::Recovered recovered = manager().recover();
  EXPECT_EQ(recovered.running, 1u);
  EXPECT_EQ(recovered.pending + recovered.finished, 0u);
  run([&]() -> Task<void> {
    auto done = co_await await(id);
    EXPECT_EQ(done.task().state(), v1::TASK_STATE_SUCCEEDED);
    EXPECT_EQ(done.task().attempt(), 2u);
    // 10 s from its first start: 6 s after the restart (give or take the
    // real time this test took to get here).
    EXPECT_NEAR(std::chrono::duration<double>(now()).count(), 6.0, 0.5);
    EXPECT_EQ(google::protobuf::util::TimeUtil::TimestampToNanoseconds(done.task().start_time()),
              started);
  });
}

TEST_F(TaskManagerTest, ARecoveredPendingTaskRunsAsItsFirstAttempt) {
  std::string id = store_task(store_, {.kind = "echo", .args_json = R"({"value": "hi"})"});
  EXPECT_EQ(manager().recover().pending, 1u);
  run([&]() -> Task<void> {
    auto done = co_await await(id);
    EXPECT_EQ(done.task().state(), v1::TASK_STATE_SUCCEEDED);
    EXPECT_EQ(done.task().attempt(), 1u);
    EXPECT_EQ(done.task().result().string_value(), "hi");
  });
}

TEST_F(TaskManagerTest, ARecoveredSleepWhoseStartWasNotStoredEndsItsSecondsAfterItsCreation) {
  std::string id =
      store_task(store_, {.kind = "sleep", .args_json = R"({"seconds": 10})", .created_ago = 4s});
  EXPECT_EQ(manager().recover().pending, 1u);
  run([&]() -> Task<void> {
    auto done = co_await await(id);
    EXPECT_EQ(done.task().state(), v1::TASK_STATE_SUCCEEDED);
    EXPECT_NEAR(std::chrono::duration<double>(now()).count(), 6.0, 0.5);
    EXPECT_EQ(done.task().start_time(), done.task().create_time());
  });
}

TEST_F(TaskManagerTest, RecoveredFinishedTasksKeepTheirResultsUntilRetentionFromTheirFinish) {
  limits_.retention = 1h;
  std::string recent = store_task(store_, {.kind = "echo",
                                           .state = v1::TASK_STATE_SUCCEEDED,
                                           .attempt = 1,
                                           .created_ago = 59min,
                                           .started_ago = 59min,
                                           .finished_ago = 59min,
                                           .result_json = "42"});
  std::string old = store_task(store_, {.kind = "echo",
                                        .state = v1::TASK_STATE_SUCCEEDED,
                                        .attempt = 1,
                                        .created_ago = 2h,
                                        .started_ago = 2h,
                                        .finished_ago = 2h,
                                        .result_json = "1"});
  EXPECT_EQ(manager().recover().finished, 2u);
  run([&]() -> Task<void> {
    co_await sleep(0s);
    v1::GetTaskRequest request;
    request.set_id(old);
    v1::Task task;
    EXPECT_EQ(manager().get_task(request, &task).error_code(), StatusCode::NOT_FOUND);
    EXPECT_EQ(get(recent).result().number_value(), 42);
    co_await sleep(59s);
    EXPECT_EQ(get(recent).state(), v1::TASK_STATE_SUCCEEDED);
    co_await sleep(2s);
    request.set_id(recent);
    auto status = manager().get_task(request, &task);
    EXPECT_EQ(status.error_code(), StatusCode::NOT_FOUND);
    EXPECT_NE(status.error_message().find("evicted"), std::string::npos) << status.error_message();
  });
}

TEST_F(TaskManagerTest, ARecoveredTasksTimeoutCountsFromItsCreation) {
  std::string id = store_task(store_, {.kind = "sleep",
                                       .args_json = R"({"seconds": 100})",
                                       .state = v1::TASK_STATE_RUNNING,
                                       .attempt = 1,
                                       .created_ago = 4s,
                                       .started_ago = 4s,
                                       .timeout = 5s});
  manager().recover();
  run([&]() -> Task<void> {
    auto done = co_await await(id);
    EXPECT_EQ(done.task().state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(done.task().error().type(), "TimeoutError");
    EXPECT_NEAR(std::chrono::duration<double>(now()).count(), 1.0, 0.5);
  });
}

TEST_F(TaskManagerTest, ARecoveredTaskPastItsTimeoutFailsAtOnce) {
  std::string id = store_task(
      store_,
      {.kind = "sleep", .args_json = R"({"seconds": 100})", .created_ago = 10s, .timeout = 5s});
  manager().recover();
  run([&]() -> Task<void> {
    auto done = co_await await(id);
    EXPECT_EQ(done.task().state(), v1::TASK_STATE_FAILED);
    EXPECT_EQ(done.task().error().type(), "TimeoutError");
    EXPECT_EQ(now(), 0s);
  });
}

TEST_F(TaskManagerTest, IdsMadeAfterRecoveryFollowTheRecoveredOnesEvenIfTheClockWasAhead) {
  // A task stamped an hour from now: the previous process's clock was ahead.
  std::string ahead = store_task(store_, {.kind = "echo",
                                          .state = v1::TASK_STATE_SUCCEEDED,
                                          .attempt = 1,
                                          .created_ago = -1h,
                                          .finished_ago = 0s,
                                          .result_json = "1"});
  manager().recover();
  run([&]() -> Task<void> {
    v1::Task created = co_await create("echo", R"({"value": 1})");
    EXPECT_GT(created.id(), ahead);
  });
}

TEST_F(TaskManagerTest, ARecoveredIdempotencyKeyStillReturnsItsTask) {
  std::string id = store_task(store_, {.kind = "echo",
                                       .state = v1::TASK_STATE_SUCCEEDED,
                                       .attempt = 1,
                                       .created_ago = 1s,
                                       .started_ago = 1s,
                                       .finished_ago = 1s,
                                       .result_json = "7",
                                       .idempotency_key = "order-17"});
  manager().recover();
  run([&]() -> Task<void> {
    v1::CreateTaskRequest again = request("echo", R"({"value": 8})");
    again.set_idempotency_key("order-17");
    v1::Task task;
    auto status = co_await manager().create_task(again, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(task.id(), id);
    EXPECT_EQ(task.result().number_value(), 7);
    EXPECT_EQ(store_.size(), 1u);
  });
}

// A store whose commits of finished tasks wait, while `hold` is set, until
// `release` is set: a durable store's disk, slowed down.
class SlowStore final : public TaskStore {
 public:
  bool hold = false;
  Event release;

  std::string describe() const override { return "slow"; }
  TaskRecord* find(const TaskId& id) override { return memory_.find(id); }
  TaskRecord* find_by_idempotency_key(std::string_view key) override {
    return memory_.find_by_idempotency_key(key);
  }
  TaskRecord* find_by_batch_key(std::string_view key) override {
    return memory_.find_by_batch_key(key);
  }
  TaskRecord& insert(std::unique_ptr<TaskRecord> record) override {
    return memory_.insert(std::move(record));
  }
  Task<void> commit(std::span<const TaskRecord* const> records) override {
    if (hold && records[0]->finished()) co_await release.wait();
  }
  void commit_soon(const TaskRecord&) override {}
  void evict(const TaskId& id) override { memory_.evict(id); }
  bool evicted(const TaskId& id) const override { return memory_.evicted(id); }
  void scan(std::optional<TaskId> after,
            const std::function<bool(const TaskRecord&)>& visit) const override {
    memory_.scan(after, visit);
  }
  std::size_t size() const override { return memory_.size(); }

 private:
  MemoryTaskStore memory_;
};

TEST_F(TaskManagerTest, AnOutcomeIsToldOnlyOnceItIsStored) {
  SlowStore slow;
  TaskManager manager(v_.loop(), kinds_, slow, limits_, 7);
  run([&]() -> Task<void> {
    v1::Task created;
    EXPECT_TRUE((co_await manager.create_task(request("echo", R"({"value": 5})"), &created)).ok());
    slow.hold = true;
    for (int i = 0; i < 5; ++i) co_await sleep(0s);  // The echo has run; its outcome waits.
    v1::AwaitTaskRequest at_once;
    at_once.set_id(created.id());
    *at_once.mutable_wait_timeout() = google::protobuf::util::TimeUtil::SecondsToDuration(0);
    v1::AwaitTaskResponse answer;
    auto awaiting = v_.loop().create_task(manager.await_task(at_once, &answer));
    v1::GatherRequest gather;
    gather.add_ids(created.id());
    v1::GatherResponse gathered;
    auto gathering = v_.loop().create_task(manager.gather(gather, &gathered));
    co_await sleep(1s);
    EXPECT_FALSE(awaiting.done());
    EXPECT_FALSE(gathering.done());
    slow.release.set();
    EXPECT_TRUE((co_await awaiting).ok());
    EXPECT_TRUE((co_await gathering).ok());
    EXPECT_TRUE(answer.done());
    EXPECT_EQ(answer.task().result().number_value(), 5);
    EXPECT_EQ(gathered.tasks(0).result().number_value(), 5);
    EXPECT_EQ(now(), 1s);
  });
}

}  // namespace
}  // namespace taskwire::server
