// The service in process, over a real gRPC channel on loopback.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
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

}  // namespace
}  // namespace taskwire::server
