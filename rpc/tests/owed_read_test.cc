#include "rpc/owed_read.h"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "core/clock.h"
#include "core/sleep.h"

namespace taskwire::rpc {
namespace {

using namespace std::chrono_literals;

class RecordingTag final : public CqTag {
 public:
  void on_event(bool ok) override { fired.push_back(ok); }
  std::vector<bool> fired;
};

TimePoint soon() { return std::chrono::steady_clock::now() + 1ms; }

// The poller is looked at by hand, the linger's timer runs on a loop on
// virtual time.
struct OwedReadTest : ::testing::Test {
  ~OwedReadTest() override { poller.shutdown_and_drain(); }
  void let_time_pass(Duration d) {
    loop.run([](Duration d) -> Task<void> { co_await sleep(d); }(d));
  }

  VirtualClock clock;
  EventLoop loop{clock};
  grpc::CompletionQueue queue;
  CqPoller poller{queue};
  RecordingTag due;
  OwedRead read{poller, due};
};

TEST_F(OwedReadTest, OwedAfterALingerWithoutAWrite) {
  read.owe_within(loop, 1ms);
  poller.poll(soon());
  EXPECT_TRUE(due.fired.empty()) << "due before the linger was over";
  let_time_pass(999us);
  poller.poll(soon());
  EXPECT_TRUE(due.fired.empty()) << "due before the linger was over";
  let_time_pass(1us);
  poller.poll(soon());
  ASSERT_EQ(due.fired, std::vector<bool>{true});
  EXPECT_TRUE(read.due(true)) << "the read did not start when due";
}

TEST_F(OwedReadTest, AWriteWithinTheLingerStartsTheRead) {
  read.owe_within(loop, 1ms);
  EXPECT_TRUE(read.take()) << "the write did not start the owed read";
  let_time_pass(5ms);
  poller.poll(soon());
  EXPECT_TRUE(due.fired.empty()) << "the linger fired after the read had started";
  EXPECT_FALSE(read.take()) << "a second read was owed";
}

TEST_F(OwedReadTest, AnUrgentReadDoesNotWaitForTheLinger) {
  read.owe_within(loop, 1ms);
  EXPECT_TRUE(read.take());
  read.owe();
  poller.poll(soon());
  ASSERT_EQ(due.fired, std::vector<bool>{true});
  EXPECT_TRUE(read.due(true));
}

}  // namespace
}  // namespace taskwire::rpc
