// The service in process, over a real gRPC channel on loopback.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "server/server.h"
#include "taskwire/v1/tasks.grpc.pb.h"

namespace taskwire::server {
namespace {

using namespace std::chrono_literals;

int thread_count() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

void* tag(std::intptr_t n) { return reinterpret_cast<void*>(n); }

// Waits (at most 10 s) for a new stream's initial metadata, which must come
// at once, before any message; then cancels the stream. `reader` was started
// with tag(1) on `queue`.
template <typename Message>
void expect_headers_at_once(grpc::ClientAsyncReader<Message>& reader, grpc::ClientContext& context,
                            grpc::CompletionQueue& queue) {
  const auto deadline = std::chrono::system_clock::now() + 10s;
  void* got = nullptr;
  bool ok = false;
  auto next = [&] {
    return queue.AsyncNext(&got, &ok, deadline) == grpc::CompletionQueue::GOT_EVENT;
  };
  ASSERT_TRUE(next()) << "the call did not start within 10 s";
  EXPECT_EQ(got, tag(1));
  EXPECT_TRUE(ok) << "the call failed to start";
  reader.ReadInitialMetadata(tag(2));
  if (next()) {
    EXPECT_EQ(got, tag(2));
    EXPECT_TRUE(ok) << "the stream ended before its initial metadata";
  } else {
    ADD_FAILURE() << "no initial metadata within 10 s, while no message was due";
  }
  context.TryCancel();
  grpc::Status status;
  reader.Finish(&status, tag(3));
  while (got != tag(3) && queue.Next(&got, &ok)) {
  }
  queue.Shutdown();
  while (queue.Next(&got, &ok)) {
  }
}

class TaskServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.drain_grace = 1s;
    server_ = std::make_unique<Server>(options);
    std::promise<int> port;
    thread_ = std::thread([&] { server_->run([&](int bound) { port.set_value(bound); }); });
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port.get_future().get()),
                                       grpc::InsecureChannelCredentials());
    stub_ = v1::TaskService::NewStub(channel);
  }
  void TearDown() override {
    server_->stop();
    thread_.join();
  }

  v1::Task create_sleep(double seconds) {
    v1::CreateTaskRequest request;
    request.set_kind("sleep");
    (*request.mutable_args()->mutable_struct_value()->mutable_fields())["seconds"].set_number_value(
        seconds);
    v1::Task task;
    grpc::ClientContext context;
    EXPECT_TRUE(stub_->CreateTask(&context, request, &task).ok());
    return task;
  }

  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::unique_ptr<v1::TaskService::Stub> stub_;
};

TEST_F(TaskServiceTest, AClientWhoseDeadlinePassesGetsDeadlineExceededAndTheTaskRunsOn) {
  v1::Task task = create_sleep(30);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 200ms);
  v1::AwaitTaskRequest request;
  request.set_id(task.id());
  v1::AwaitTaskResponse response;
  EXPECT_EQ(stub_->AwaitTask(&context, request, &response).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);

  grpc::ClientContext get_context;
  v1::GetTaskRequest get;
  get.set_id(task.id());
  v1::Task now;
  ASSERT_TRUE(stub_->GetTask(&get_context, get, &now).ok());
  EXPECT_EQ(now.state(), v1::TASK_STATE_RUNNING);
}

TEST_F(TaskServiceTest, TenThousandConcurrentAwaitsCostNoThreads) {
  constexpr int kAwaits = 10'000;
  v1::Task task = create_sleep(60);
  int threads_before = thread_count();
  grpc::CompletionQueue queue;
  struct Call {
    grpc::ClientContext context;
    v1::AwaitTaskResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::AwaitTaskResponse>> reader;
  };
  std::vector<std::unique_ptr<Call>> calls;
  v1::AwaitTaskRequest request;
  request.set_id(task.id());
  for (int i = 0; i < kAwaits; ++i) {
    auto call = std::make_unique<Call>();
    call->reader = stub_->AsyncAwaitTask(&call->context, request, &queue);
    call->reader->Finish(&call->response, &call->status, call.get());
    calls.push_back(std::move(call));
  }
  // Every await is now parked on the server; cancelling the task releases
  // them all, each seeing it CANCELLED.
  grpc::ClientContext cancel_context;
  v1::CancelTaskRequest cancel;
  cancel.set_id(task.id());
  v1::Task cancelled;
  ASSERT_TRUE(stub_->CancelTask(&cancel_context, cancel, &cancelled).ok());
  int threads_during = thread_count();
  int answered = 0;
  void* tag;
  bool ok;
  while (answered < kAwaits && queue.Next(&tag, &ok)) {
    auto* call = static_cast<Call*>(tag);
    EXPECT_TRUE(call->status.ok()) << call->status.error_message();
    EXPECT_EQ(call->response.task().state(), v1::TASK_STATE_CANCELLED);
    ++answered;
  }
  EXPECT_EQ(answered, kAwaits);
  EXPECT_LT(threads_during - threads_before, 16) << "awaits must not hold threads";
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
}

TEST_F(TaskServiceTest, AsCompletedStreamsTasksInCompletionOrder) {
  v1::AsCompletedRequest request;
  for (double seconds : {0.3, 0.1, 0.2}) request.add_ids(create_sleep(seconds).id());
  grpc::ClientContext context;
  auto reader = stub_->AsCompleted(&context, request);
  std::vector<std::string> order;
  v1::Task task;
  while (reader->Read(&task)) order.push_back(task.id());
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(order, (std::vector<std::string>{request.ids(1), request.ids(2), request.ids(0)}));
}

TEST_F(TaskServiceTest, AsCompletedBatchesStreamsTasksThatFinishTogetherInOneMessage) {
  // Three tasks finishing at once (created in one call, so in one pass of
  // the server's loop), and one later.
  v1::CreateTasksRequest create;
  for (double seconds : {0.3, 0.3, 0.3, 1.5}) {
    v1::CreateTaskRequest* task = create.add_tasks();
    task->set_kind("sleep");
    (*task->mutable_args()->mutable_struct_value()->mutable_fields())["seconds"].set_number_value(
        seconds);
  }
  v1::CreateTasksResponse created;
  grpc::ClientContext create_context;
  ASSERT_TRUE(stub_->CreateTasks(&create_context, create, &created).ok());
  v1::AsCompletedRequest request;
  for (int i = 3; i >= 0; --i) request.add_ids(created.tasks(i).id());
  request.set_view(v1::TASK_VIEW_OUTCOME);
  grpc::ClientContext context;
  auto reader = stub_->AsCompletedBatches(&context, request);
  std::vector<std::vector<std::string>> runs;
  v1::TaskBatch batch;
  while (reader->Read(&batch)) {
    auto& run = runs.emplace_back();
    for (const v1::Task& task : batch.tasks()) {
      run.push_back(task.id());
      EXPECT_EQ(task.state(), v1::TASK_STATE_SUCCEEDED) << task.id();
      EXPECT_FALSE(task.has_create_time()) << "the OUTCOME view asked for";
    }
  }
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(runs.size(), 2u) << "three tasks that finish together, then one";
  std::sort(runs[0].begin(), runs[0].end());
  EXPECT_EQ(runs[0], (std::vector<std::string>{created.tasks(0).id(), created.tasks(1).id(),
                                               created.tasks(2).id()}));
  EXPECT_EQ(runs[1], (std::vector<std::string>{created.tasks(3).id()}));
}

// A client keeps its serialized request until the stream's initial
// metadata arrives: a stream that sent it only with its first message would
// make a client following 10,000 tasks hold their ids until one finished.
TEST_F(TaskServiceTest, StreamsSendTheirInitialMetadataBeforeAnyMessageIsDue) {
  v1::Task task = create_sleep(60);
  {
    SCOPED_TRACE("AsCompleted");
    v1::AsCompletedRequest request;
    request.add_ids(task.id());
    grpc::CompletionQueue queue;
    grpc::ClientContext context;
    auto reader = stub_->AsyncAsCompleted(&context, request, &queue, tag(1));
    expect_headers_at_once(*reader, context, queue);
  }
  {
    SCOPED_TRACE("AsCompletedBatches");
    v1::AsCompletedRequest request;
    request.add_ids(task.id());
    grpc::CompletionQueue queue;
    grpc::ClientContext context;
    auto reader = stub_->AsyncAsCompletedBatches(&context, request, &queue, tag(1));
    expect_headers_at_once(*reader, context, queue);
  }
  {
    SCOPED_TRACE("WatchTasks");
    v1::WatchTasksRequest request;
    request.add_ids(task.id());
    request.add_states(v1::TASK_STATE_SUCCEEDED);
    grpc::CompletionQueue queue;
    grpc::ClientContext context;
    auto reader = stub_->AsyncWatchTasks(&context, request, &queue, tag(1));
    expect_headers_at_once(*reader, context, queue);
  }
  grpc::ClientContext context;
  v1::GetTaskRequest get;
  get.set_id(task.id());
  v1::Task now;
  ASSERT_TRUE(stub_->GetTask(&context, get, &now).ok());
  EXPECT_EQ(now.state(), v1::TASK_STATE_RUNNING) << "no message was due: the task still runs";
}

TEST_F(TaskServiceTest, StoppingEndsWatchStreamsAndRefusesNewTasks) {
  grpc::ClientContext watch_context;
  v1::WatchTasksRequest watch;
  auto reader = stub_->WatchTasks(&watch_context, watch);
  v1::Task created = create_sleep(0.01);
  v1::TaskEvent event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.task().id(), created.id());
  EXPECT_EQ(event.task().state(), v1::TASK_STATE_PENDING);
  server_->stop();
  while (reader->Read(&event)) {
  }
  EXPECT_TRUE(reader->Finish().ok());
}

// Each RPC once with a good request and once with each kind of bad one,
// over the channel: the status code and the field named in the message.
TEST_F(TaskServiceTest, EveryRpcAnswersAndRejectsBadInputNamingTheField) {
  const std::string unknown = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
  v1::Task task = create_sleep(0.05);
  auto expect = [](const grpc::Status& status, grpc::StatusCode code, const std::string& prefix) {
    EXPECT_EQ(status.error_code(), code) << status.error_message();
    EXPECT_EQ(status.error_message().rfind(prefix, 0), 0u) << status.error_message();
  };
  {
    grpc::ClientContext c1, c2;
    v1::CreateTasksRequest batch;
    batch.add_tasks()->set_kind("echo");
    v1::CreateTasksResponse created;
    expect(stub_->CreateTasks(&c1, batch, &created), grpc::StatusCode::INVALID_ARGUMENT,
           "tasks[0].args:");
    (*batch.mutable_tasks(0)->mutable_args()->mutable_struct_value()->mutable_fields())["value"]
        .set_bool_value(true);
    ASSERT_TRUE(stub_->CreateTasks(&c2, batch, &created).ok());
    EXPECT_EQ(created.tasks_size(), 1);
  }
  {
    grpc::ClientContext c1, c2, c3;
    v1::GetTaskRequest get;
    v1::Task got;
    get.set_id("bad");
    expect(stub_->GetTask(&c1, get, &got), grpc::StatusCode::INVALID_ARGUMENT, "id:");
    get.set_id(unknown);
    expect(stub_->GetTask(&c2, get, &got), grpc::StatusCode::NOT_FOUND, "id:");
    get.set_id(task.id());
    EXPECT_TRUE(stub_->GetTask(&c3, get, &got).ok());
  }
  {
    grpc::ClientContext c1, c2;
    v1::ListTasksRequest list;
    v1::ListTasksResponse listed;
    list.set_page_size(-1);
    expect(stub_->ListTasks(&c1, list, &listed), grpc::StatusCode::INVALID_ARGUMENT, "page_size:");
    list.set_page_size(10);
    EXPECT_TRUE(stub_->ListTasks(&c2, list, &listed).ok());
    EXPECT_EQ(listed.tasks_size(), 2);
  }
  {
    grpc::ClientContext c1, c2, c3;
    v1::AwaitTaskRequest await;
    v1::AwaitTaskResponse awaited;
    await.set_id(task.id());
    await.mutable_wait_timeout()->set_seconds(-1);
    expect(stub_->AwaitTask(&c1, await, &awaited), grpc::StatusCode::INVALID_ARGUMENT,
           "wait_timeout:");
    await.clear_wait_timeout();
    await.set_id(unknown);
    expect(stub_->AwaitTask(&c2, await, &awaited), grpc::StatusCode::NOT_FOUND, "id:");
    await.set_id(task.id());
    ASSERT_TRUE(stub_->AwaitTask(&c3, await, &awaited).ok());
    EXPECT_TRUE(awaited.done());
  }
  {
    grpc::ClientContext c1, c2;
    v1::RunTaskRequest run;
    v1::AwaitTaskResponse ran;
    run.mutable_task()->set_kind("");
    expect(stub_->RunTask(&c1, run, &ran), grpc::StatusCode::INVALID_ARGUMENT, "task.kind:");
    run.mutable_task()->set_kind("fail");
    (*run.mutable_task()->mutable_args()->mutable_struct_value()->mutable_fields())["message"]
        .set_string_value("x");
    ASSERT_TRUE(stub_->RunTask(&c2, run, &ran).ok());
    EXPECT_EQ(ran.task().state(), v1::TASK_STATE_FAILED);
  }
  {
    grpc::ClientContext c1, c2;
    v1::GatherRequest gather;
    v1::GatherResponse gathered;
    gather.add_ids(task.id());
    gather.add_ids(unknown);
    expect(stub_->Gather(&c1, gather, &gathered), grpc::StatusCode::NOT_FOUND, "ids[1]:");
    gather.mutable_ids()->RemoveLast();
    ASSERT_TRUE(stub_->Gather(&c2, gather, &gathered).ok());
    EXPECT_TRUE(gathered.done());
  }
  {
    grpc::ClientContext c1, c2;
    v1::WaitRequest wait;
    v1::WaitResponse waited;
    wait.add_ids(task.id());
    wait.set_count(2);
    expect(stub_->Wait(&c1, wait, &waited), grpc::StatusCode::INVALID_ARGUMENT, "count:");
    wait.set_count(1);
    ASSERT_TRUE(stub_->Wait(&c2, wait, &waited).ok());
    EXPECT_EQ(waited.done_size(), 1);
  }
  {
    grpc::ClientContext c1;
    v1::AsCompletedRequest request;
    request.add_ids("bad");
    auto reader = stub_->AsCompleted(&c1, request);
    v1::Task ignored;
    EXPECT_FALSE(reader->Read(&ignored));
    expect(reader->Finish(), grpc::StatusCode::INVALID_ARGUMENT, "ids[0]:");
  }
  {
    grpc::ClientContext c1, c2, c3, c4;
    v1::AsCompletedRequest request;
    v1::TaskBatch batch;
    request.add_ids("bad");
    auto bad = stub_->AsCompletedBatches(&c1, request);
    EXPECT_FALSE(bad->Read(&batch));
    expect(bad->Finish(), grpc::StatusCode::INVALID_ARGUMENT, "ids[0]:");
    request.set_ids(0, unknown);
    auto missing = stub_->AsCompletedBatches(&c2, request);
    EXPECT_FALSE(missing->Read(&batch));
    expect(missing->Finish(), grpc::StatusCode::NOT_FOUND, "ids[0]:");
    request.set_ids(0, task.id());
    request.mutable_timeout()->set_seconds(-1);
    auto negative = stub_->AsCompletedBatches(&c3, request);
    EXPECT_FALSE(negative->Read(&batch));
    expect(negative->Finish(), grpc::StatusCode::INVALID_ARGUMENT, "timeout:");
    request.clear_timeout();
    auto good = stub_->AsCompletedBatches(&c4, request);
    ASSERT_TRUE(good->Read(&batch));
    EXPECT_EQ(batch.tasks_size(), 1);
    EXPECT_FALSE(good->Read(&batch));
    EXPECT_TRUE(good->Finish().ok());
  }
  {
    grpc::ClientContext c1, c2;
    v1::CancelTaskRequest cancel;
    v1::Task cancelled;
    cancel.set_id(unknown);
    expect(stub_->CancelTask(&c1, cancel, &cancelled), grpc::StatusCode::NOT_FOUND, "id:");
    cancel.set_id(task.id());
    ASSERT_TRUE(stub_->CancelTask(&c2, cancel, &cancelled).ok());
    EXPECT_EQ(cancelled.state(), v1::TASK_STATE_SUCCEEDED);  // Already finished: unchanged.
  }
  {
    grpc::ClientContext c1;
    v1::WatchTasksRequest watch;
    watch.add_states(static_cast<v1::TaskState>(9));
    auto reader = stub_->WatchTasks(&c1, watch);
    v1::TaskEvent ignored;
    EXPECT_FALSE(reader->Read(&ignored));
    expect(reader->Finish(), grpc::StatusCode::INVALID_ARGUMENT, "states[0]:");
  }
}

}  // namespace
}  // namespace taskwire::server
