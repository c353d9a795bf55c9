#include "rpc/cq_poller.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

namespace taskwire::rpc {
namespace {

// Records how it was fired.
class RecordingTag final : public CqTag {
 public:
  void on_event(bool ok) override { fired.push_back(ok); }
  std::vector<bool> fired;
};

// Deferring again from inside on_event, as a stream that owes another
// read does.
class RedeferringTag final : public CqTag {
 public:
  explicit RedeferringTag(CqPoller& poller) : poller_(poller) {}
  void on_event(bool ok) override {
    ++fired;
    if (ok && fired == 1) poller_.defer(*this);
  }
  int fired = 0;

 private:
  CqPoller& poller_;
};

// The poller looks at its queue at most once per busy-poll interval while
// the loop has work: wait that long, so that the next busy poll() looks.
void let_busy_interval_pass() { std::this_thread::sleep_for(std::chrono::milliseconds(1)); }

TimePoint soon() { return std::chrono::steady_clock::now() + std::chrono::milliseconds(1); }

TEST(CqPollerDeferTest, FiresBeforeALookThatWaits) {
  grpc::CompletionQueue queue;
  CqPoller poller(queue);
  RecordingTag tag;
  poller.defer(tag);
  EXPECT_TRUE(tag.fired.empty());
  poller.poll(soon());  // The loop is idle.
  EXPECT_EQ(tag.fired, std::vector<bool>{true});
  poller.poll(soon());
  EXPECT_EQ(tag.fired.size(), 1u) << "a deferred tag fires once";
  poller.shutdown_and_drain();
}

TEST(CqPollerDeferTest, WhileBusyFiresAtTheLookAfterNext) {
  grpc::CompletionQueue queue;
  CqPoller poller(queue);
  RecordingTag tag;
  poller.defer(tag);
  poller.poll(Poller::kNoWait);  // The pass that deferred it.
  EXPECT_TRUE(tag.fired.empty()) << "fired before the pass's own writes";
  let_busy_interval_pass();
  poller.poll(Poller::kNoWait);
  EXPECT_EQ(tag.fired, std::vector<bool>{true});
  poller.shutdown_and_drain();
}

TEST(CqPollerDeferTest, ALookThatWaitsFiresWhatBusyLooksLeft) {
  grpc::CompletionQueue queue;
  CqPoller poller(queue);
  RecordingTag tag;
  poller.poll(Poller::kNoWait);  // Looks now; the next busy poll may not.
  poller.defer(tag);
  poller.poll(Poller::kNoWait);
  poller.poll(Poller::kNoWait);
  // Whether those looked depends on the clock; a look that waits always
  // fires what is due.
  poller.poll(soon());
  EXPECT_EQ(tag.fired, std::vector<bool>{true});
  poller.shutdown_and_drain();
}

TEST(CqPollerDeferTest, ATagDeferredAgainWhileFiringWaitsForALaterLook) {
  grpc::CompletionQueue queue;
  CqPoller poller(queue);
  RedeferringTag tag(poller);
  poller.defer(tag);
  poller.poll(soon());
  EXPECT_EQ(tag.fired, 1);
  poller.poll(soon());
  EXPECT_EQ(tag.fired, 2);
  poller.shutdown_and_drain();
}

TEST(CqPollerDeferTest, FailsWhenTheQueueIsDrained) {
  grpc::CompletionQueue queue;
  CqPoller poller(queue);
  RecordingTag tag;
  poller.defer(tag);
  poller.shutdown_and_drain();
  EXPECT_EQ(tag.fired, std::vector<bool>{false}) << "must not start an operation on a closed queue";
}

TEST(CqPollerDeferTest, FailsWhenTheLoopSeesTheQueueShutDown) {
  grpc::CompletionQueue queue;
  CqPoller poller(queue);
  RecordingTag tag;
  poller.defer(tag);
  let_busy_interval_pass();
  poller.poll(Poller::kNoWait);  // Now due at the next look.
  EXPECT_TRUE(tag.fired.empty());
  poller.shutdown();
  poller.poll(Poller::kNoWait);
  let_busy_interval_pass();
  poller.poll(Poller::kNoWait);
  EXPECT_TRUE(poller.drained.is_set());
  EXPECT_EQ(tag.fired, std::vector<bool>{false}) << "must not start an operation on a closed queue";
}

}  // namespace
}  // namespace taskwire::rpc
