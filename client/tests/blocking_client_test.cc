// The blocking façade against a real taskwired process.
#include "client/blocking_client.h"

#include <gtest/gtest.h>

#include <chrono>

#include "client/errors.h"
#include "client/tests/taskwired_process.h"

namespace taskwire::client {
namespace {

using namespace std::chrono_literals;

ClientOptions options_for(const std::string& target) {
  ClientOptions options;
  options.target = target;
  return options;
}

class BlockingClientTest : public ::testing::Test {
 protected:
  BlockingClientTest() : client_(options_for(server_.target())) {}
  testing::TaskwiredProcess server_;
  BlockingClient client_;
};

TEST_F(BlockingClientTest, ResultBlocksUntilTheRemoteTaskIsDone) {
  BlockingTask task = client_.create_task("echo", json_value(R"({"value": "hi"})"));
  EXPECT_EQ(task.result().string_value(), "hi");
  EXPECT_EQ(task.id().size(), 26u);
}

TEST_F(BlockingClientTest, ResultWithATimeoutThrowsTimeoutErrorAndLeavesTheTaskRunning) {
  BlockingTask task = client_.create_task("sleep", json_value(R"({"seconds": 30})"));
  EXPECT_THROW(task.result(200ms), TimeoutError);
  auto record = client_.run<v1::Task>([id = task.id()](Client& client) { return client.get(id); });
  EXPECT_EQ(record.state(), v1::TASK_STATE_RUNNING);
  task.cancel();
  EXPECT_THROW(task.result(), CancelledError);
}

TEST_F(BlockingClientTest, GatherBlocksForAllAndKeepsTheirOrder) {
  auto start = std::chrono::steady_clock::now();
  std::vector<BlockingTask> tasks{client_.create_task("sleep", json_value(R"({"seconds": 1})")),
                                  client_.create_task("echo", json_value(R"({"value": 2})"))};
  auto results = client_.gather(tasks);
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1].number_value(), 2);
  EXPECT_GE(took.count(), 0.9);
  EXPECT_LT(took.count(), 2.5);
}

TEST_F(BlockingClientTest, ARemoteFailureIsThrownToTheCaller) {
  BlockingTask task =
      client_.create_task("fail", json_value(R"({"message": "m", "type": "KeyError"})"));
  try {
    task.result();
    ADD_FAILURE() << "should have thrown";
  } catch (const RemoteTaskError& error) {
    EXPECT_EQ(error.type(), "KeyError");
  }
}

}  // namespace
}  // namespace taskwire::client
