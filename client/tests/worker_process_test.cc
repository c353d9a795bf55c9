// Worker processes (client/examples:example_worker) against a real
// taskwired: the example kinds, and what happens when a worker dies with
// SIGKILL in the middle of a task.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/tests/taskwired_process.h"
#include "taskwire/v1/tasks.grpc.pb.h"

namespace taskwire {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using google::protobuf::Value;

Value json(const std::string& text) {
  Value value;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &value).ok()) << text;
  return value;
}

// One example_worker process, killed (SIGKILL) when the test ends if it is
// still alive.
class WorkerProcess {
 public:
  WorkerProcess(const std::string& target, const std::string& identity) {
    const char* srcdir = std::getenv("TEST_SRCDIR");
    const char* tmpdir = std::getenv("TEST_TMPDIR");
    static int count = 0;
    events_ = std::string(tmpdir) + "/events." + identity + "." + std::to_string(++count);
    std::vector<std::string> args = {
        std::string(srcdir) + "/taskwire/client/examples/example_worker",
        "--server",
        target,
        "--identity",
        identity,
        "--credits",
        "1",
        "--events-file",
        events_};
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~WorkerProcess() { kill(); }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // The lines of the worker's events file that start with `event`.
  std::vector<std::string> events(const std::string& event) const {
    std::ifstream in(events_);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(event + " ", 0) == 0) lines.push_back(line);
    }
    return lines;
  }

 private:
  std::string events_;
  pid_t pid_ = -1;
};

class WorkerProcessTest : public ::testing::Test {
 protected:
  WorkerProcessTest() {
    auto channel = grpc::CreateChannel(server_.target(), grpc::InsecureChannelCredentials());
    tasks_ = v1::TaskService::NewStub(channel);
  }

  v1::Task run(const std::string& kind, const std::string& args_json,
               const v1::DispatchOptions& dispatch) {
    v1::RunTaskRequest request;
    request.mutable_task()->set_kind(kind);
    *request.mutable_task()->mutable_args() = json(args_json);
    *request.mutable_task()->mutable_dispatch() = dispatch;
    request.mutable_wait_timeout()->set_seconds(30);
    v1::AwaitTaskResponse response;
    grpc::ClientContext context;
    grpc::Status status = tasks_->RunTask(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(response.done());
    return response.task();
  }
  v1::Task run(const std::string& kind, const std::string& args_json) {
    return run(kind, args_json, v1::DispatchOptions());
  }

  testing::TaskwiredProcess server_;
  std::unique_ptr<v1::TaskService::Stub> tasks_;
};

TEST_F(WorkerProcessTest, TheExampleKindsRunOnAWorkerProcess) {
  WorkerProcess worker(server_.target(), "example");
  v1::Task counted = run("wordcount", R"({"text": "one two\nthree"})");
  ASSERT_EQ(counted.state(), v1::TASK_STATE_SUCCEEDED) << counted.error().message();
  const auto& fields = counted.result().struct_value().fields();
  EXPECT_EQ(fields.at("words").number_value(), 3);
  EXPECT_EQ(fields.at("lines").number_value(), 2);
  EXPECT_EQ(fields.at("chars").number_value(), 13);
  v1::Task hashed = run("sha256", R"({"data": "abc"})");
  ASSERT_EQ(hashed.state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(hashed.result().struct_value().fields().at("hex").string_value(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  v1::Task failed = run("raise", R"({"type": "Nope", "message": "no", "non_retryable": true})");
  EXPECT_EQ(failed.state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(failed.error().type(), "Nope");
}

TEST_F(WorkerProcessTest, ATaskOfAKilledWorkerFinishesOnAnotherAsAttemptTwo) {
  WorkerProcess a(server_.target(), "a");
  WorkerProcess b(server_.target(), "b");
  // Both connected: each has run a task (two at once, credits 1 each).
  for (int round = 0; round < 20 && (a.events("started").empty() || b.events("started").empty());
       ++round) {
    std::vector<std::thread> runs;
    for (int i = 0; i < 2; ++i) runs.emplace_back([&] { run("hold", R"({"seconds": 0.2})"); });
    for (auto& t : runs) t.join();
  }
  ASSERT_FALSE(a.events("started").empty());
  ASSERT_FALSE(b.events("started").empty());
  const std::size_t a_before = a.events("started").size();
  const std::size_t b_before = b.events("started").size();
  v1::DispatchOptions dispatch;
  dispatch.mutable_retry_policy()->mutable_initial_interval()->set_nanos(100'000'000);
  dispatch.mutable_retry_policy()->set_maximum_attempts(2);
  std::string killed;
  auto started = Clock::now();
  // Whichever worker starts the long task is killed 300 ms into it.
  std::thread killer([&] {
    auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      bool on_a = a.events("started").size() > a_before;
      bool on_b = b.events("started").size() > b_before;
      if (on_a || on_b) {
        std::this_thread::sleep_for(300ms);
        (on_a ? a : b).kill();
        killed = on_a ? "a" : "b";
        return;
      }
      std::this_thread::sleep_for(5ms);
    }
  });
  v1::Task done = run("hold", R"({"seconds": 1})", dispatch);
  killer.join();
  ASSERT_FALSE(killed.empty());
  ASSERT_EQ(done.state(), v1::TASK_STATE_SUCCEEDED) << done.error().message();
  EXPECT_EQ(done.attempt(), 2u);
  const auto& fields = done.result().struct_value().fields();
  EXPECT_EQ(fields.at("attempt").number_value(), 2);
  EXPECT_EQ(fields.at("worker").string_value(), killed == "a" ? "b" : "a");
  std::printf(
      "killed worker %s; task finished on the other after %lld ms\n", killed.c_str(),
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()));
}

TEST_F(WorkerProcessTest, ATaskFailsWithWorkerLostWhenNoAttemptsAreLeft) {
  WorkerProcess a(server_.target(), "a");
  v1::DispatchOptions dispatch;
  dispatch.mutable_retry_policy()->set_maximum_attempts(1);
  std::thread killer([&] {
    auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline && a.events("started").empty()) std::this_thread::sleep_for(5ms);
    a.kill();
  });
  v1::Task done = run("hold", R"({"seconds": 30})", dispatch);
  killer.join();
  EXPECT_EQ(done.state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(done.error().type(), "WorkerLost");
  EXPECT_NE(done.error().message().find("no attempts left"), std::string::npos)
      << done.error().message();
}

}  // namespace
}  // namespace taskwire
