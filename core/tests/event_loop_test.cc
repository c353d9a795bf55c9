#include "core/event_loop.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "core/sleep.h"

namespace taskwire {
namespace {

using namespace std::chrono_literals;

Task<int> answer() { co_return 42; }

Task<int> add_after(Duration delay, int a, int b) {
  co_await sleep(delay);
  co_return a + b;
}

TEST(EventLoop, RunReturnsTheMainCoroutinesValue) {
  VirtualClock clock;
  EventLoop loop(clock);
  EXPECT_EQ(loop.run(answer()), 42);
}

TEST(EventLoop, RunRethrowsTheMainCoroutinesException) {
  VirtualClock clock;
  EventLoop loop(clock);
  auto failing = []() -> Task<void> {
    throw std::runtime_error("boom");
    co_return;
  };
  EXPECT_THROW(loop.run(failing()), std::runtime_error);
}

TEST(EventLoop, SleepAdvancesVirtualTimeExactly) {
  VirtualClock clock;
  EventLoop loop(clock);
  EXPECT_EQ(loop.run(add_after(1500ms, 1, 2)), 3);
  EXPECT_EQ(clock.now().time_since_epoch(), 1500ms);
}

TEST(EventLoop, CreateTaskStartsWithoutBeingAwaited) {
  VirtualClock clock;
  EventLoop loop(clock);
  std::vector<std::string> events;
  auto body = [&]() -> Task<void> {
    auto worker = [&]() -> Task<void> {
      events.push_back("worker ran");
      co_return;
    };
    TaskHandle<void> handle = EventLoop::current()->create_task(worker());
    events.push_back("created");
    co_await sleep(0s);
    events.push_back("after yield");
    EXPECT_TRUE(handle.done());
  };
  loop.run(body());
  EXPECT_EQ(events, (std::vector<std::string>{"created", "worker ran", "after yield"}));
}

TEST(EventLoop, CallSoonRunsCallbacksInFifoOrder) {
  VirtualClock clock;
  EventLoop loop(clock);
  std::vector<int> order;
  auto body = [&]() -> Task<void> {
    auto* loop = EventLoop::current();
    for (int i = 0; i < 5; ++i) loop->call_soon([&order, i] { order.push_back(i); });
    co_await sleep(0s);
  };
  loop.run(body());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(EventLoop, CallLaterRunsAtItsDeadlineAndCanBeCancelled) {
  VirtualClock clock;
  EventLoop loop(clock);
  std::vector<std::pair<std::string, TimePoint>> fired;
  auto body = [&]() -> Task<void> {
    auto* loop = EventLoop::current();
    loop->call_later(2s, [&] { fired.emplace_back("two", loop->now()); });
    loop->call_later(1s, [&] { fired.emplace_back("one", loop->now()); });
    CallbackHandle cancelled =
        loop->call_later(1500ms, [&] { fired.emplace_back("never", loop->now()); });
    cancelled.cancel();
    EXPECT_TRUE(cancelled.cancelled());
    co_await sleep(3s);
  };
  loop.run(body());
  ASSERT_EQ(fired.size(), 2u);
  EXPECT_EQ(fired[0].first, "one");
  EXPECT_EQ(fired[0].second.time_since_epoch(), 1s);
  EXPECT_EQ(fired[1].first, "two");
  EXPECT_EQ(fired[1].second.time_since_epoch(), 2s);
}

TEST(EventLoop, PostFromManyThreadsRunsEveryCallbackOnTheLoopThread) {
  EventLoop loop;
  constexpr int kThreads = 8;
  constexpr int kPostsPerThread = 2000;
  int received = 0;  // Touched only on the loop thread.
  std::thread::id loop_thread;
  auto body = [&]() -> Task<void> {
    loop_thread = std::this_thread::get_id();
    auto* loop = EventLoop::current();
    std::vector<std::thread> threads;
    bool wrong_thread = false;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < kPostsPerThread; ++i) {
          loop->post([&] {
            if (std::this_thread::get_id() != loop_thread) wrong_thread = true;
            ++received;
          });
        }
      });
    }
    while (received < kThreads * kPostsPerThread) co_await sleep(1ms);
    for (auto& thread : threads) thread.join();
    EXPECT_FALSE(wrong_thread);
  };
  loop.run(body());
  EXPECT_EQ(received, kThreads * kPostsPerThread);
}

}  // namespace
}  // namespace taskwire
