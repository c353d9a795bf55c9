// EventLoop with a Poller: what the loop asks of it and when.
#include "core/poller.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "core/errors.h"
#include "core/event.h"
#include "core/event_loop.h"
#include "core/sleep.h"

namespace taskwire {
namespace {

using namespace std::chrono_literals;

// Records each poll's deadline; a poll that may wait waits on a condition
// variable until its deadline or wake(), as a real poller waits on I/O.
// Tests can hand it "I/O events": callbacks that the next poll runs.
class RecordingPoller final : public Poller {
 public:
  void poll(TimePoint deadline) override {
    std::unique_lock lock(mutex_);
    deadlines.push_back(deadline);
    if (deadline != kNoWait && events_.empty() && !woken_) {
      if (deadline == kNoDeadline) {
        waiting_forever = true;
        cv_.wait(lock, [&] { return woken_ || !events_.empty(); });
        waiting_forever = false;
      } else {
        cv_.wait_until(lock, deadline, [&] { return woken_ || !events_.empty(); });
      }
    }
    woken_ = false;
    std::vector<std::function<void()>> ready = std::move(events_);
    events_.clear();
    lock.unlock();
    for (auto& event : ready) event();
  }
  void wake() override {
    std::lock_guard lock(mutex_);
    ++wakes;
    woken_ = true;
    cv_.notify_one();
  }
  void deliver(std::function<void()> event) {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
    cv_.notify_one();
  }

  std::vector<TimePoint> deadlines;  // Loop thread.
  std::atomic<int> wakes{0};
  std::atomic<bool> waiting_forever{false};

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::function<void()>> events_;
  bool woken_ = false;
};

TEST(PollerTest, AnIdleLoopWaitsInThePollerUntilItsNextTimer) {
  EventLoop loop;
  RecordingPoller poller;
  loop.set_poller(&poller);
  TimePoint earliest, latest;
  loop.run([&]() -> Task<void> {
    earliest = loop.now() + 2ms;
    co_await sleep(2ms);
    latest = loop.now();
  }());
  // With nothing to run, the loop waited in the poller for the timer's
  // deadline, and for nothing else.
  std::vector<TimePoint> waits;
  for (TimePoint d : poller.deadlines) {
    if (d != Poller::kNoWait) waits.push_back(d);
  }
  EXPECT_FALSE(waits.empty());
  for (TimePoint d : waits) {
    EXPECT_GE(d, earliest);
    EXPECT_LE(d, latest);
  }
}

TEST(PollerTest, ALoopWithWorkToRunPollsWithoutWaiting) {
  EventLoop loop;
  RecordingPoller poller;
  loop.set_poller(&poller);
  loop.run([&]() -> Task<void> {
    loop.call_soon([] {});
    co_await sleep(0s);
  }());
  ASSERT_FALSE(poller.deadlines.empty());
  EXPECT_EQ(poller.deadlines.front(), Poller::kNoWait);
}

TEST(PollerTest, PostFromAnotherThreadWakesTheWaitingPoller) {
  EventLoop loop;
  RecordingPoller poller;
  loop.set_poller(&poller);
  bool ran = false;
  loop.run([&]() -> Task<void> {
    Event posted;
    std::thread other([&] {
      while (!poller.waiting_forever) std::this_thread::yield();
      loop.post([&] { ran = true, posted.set(); });
    });
    co_await posted.wait();  // No timer: the loop waits in the poller with no deadline.
    other.join();
  }());
  EXPECT_TRUE(ran);
  EXPECT_EQ(poller.wakes, 1);
}

TEST(PollerTest, EventsThePollerDeliversRunOnTheLoopAndResumeTasks) {
  EventLoop loop;
  RecordingPoller poller;
  loop.set_poller(&poller);
  std::thread::id event_thread;
  loop.run([&]() -> Task<void> {
    Event io_done;
    poller.deliver([&] {
      event_thread = std::this_thread::get_id();
      io_done.set();
    });
    co_await io_done.wait();
  }());
  EXPECT_EQ(event_thread, std::this_thread::get_id());
}

TEST(PollerTest, WithoutItsPollerTheLoopGoesBackToItsConditionVariable) {
  EventLoop loop;
  RecordingPoller poller;
  loop.set_poller(&poller);
  loop.run([&]() -> Task<void> {
    co_await sleep(0s);
    loop.set_poller(nullptr);
    std::size_t polls = poller.deadlines.size();
    co_await sleep(1ms);
    EXPECT_EQ(poller.deadlines.size(), polls);
  }());
}

TEST(PollerTest, AVirtualTimeLoopRefusesAPoller) {
  VirtualClock clock;
  EventLoop loop(clock);
  RecordingPoller poller;
  EXPECT_THROW(loop.set_poller(&poller), InvalidStateError);
}

}  // namespace
}  // namespace taskwire
