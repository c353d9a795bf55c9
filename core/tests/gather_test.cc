#include "core/gather.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "core/sleep.h"
#include "core/tests/test_loop.h"

namespace taskwire {
namespace {

using namespace std::chrono_literals;
using testing::fail_after;
using testing::loop;
using testing::sleep_then;
using testing::VirtualLoop;

TEST(Gather, TwoSleepsOfTwoAndOneSecondsTakeTwoSecondsNotThree) {
  VirtualLoop v;
  auto body = []() -> Task<std::tuple<int, int>> {
    co_return co_await gather(sleep_then(2s, 1), sleep_then(1s, 2));
  };
  auto [a, b] = v.run(body());
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 2);
  EXPECT_EQ(v.elapsed(), 2000ms);
}

TEST(Gather, ResultsComeInArgumentOrderNotCompletionOrder) {
  VirtualLoop v;
  auto body = []() -> Task<std::vector<int>> {
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 5; ++i) tasks.push_back(sleep_then(Duration(5s) - Duration(1s) * i, i));
    co_return co_await gather(std::move(tasks));
  };
  EXPECT_EQ(v.run(body()), (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(v.elapsed(), 5s);
}

TEST(Gather, MixesHandlesCoroutinesAndVoidTasks) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    auto handle = loop().create_task(sleep_then(1s, 10));
    auto nothing = []() -> Task<void> { co_await sleep(2s); };
    auto [a, unit, b] = co_await gather(handle, nothing(), sleep_then(1s, 20));
    EXPECT_EQ(a + b, 30);
    EXPECT_EQ(unit, std::monostate{});
  };
  v.run(body());
  EXPECT_EQ(v.elapsed(), 2s);
}

TEST(Gather, StartsItsCoroutinesWhenCalledNotWhenAwaited) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    auto gathering = gather(sleep_then(2s, 1), sleep_then(2s, 2));
    co_await sleep(2s);  // The children sleep meanwhile.
    co_await gathering;
  };
  v.run(body());
  EXPECT_EQ(v.elapsed(), 2s);
}

TEST(Gather, TheFirstExceptionPropagatesAtOnceAndTheOthersKeepRunning) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    auto slow = loop().create_task(sleep_then(5s, 1));
    try {
      co_await gather(slow, fail_after(1s, "first"), fail_after(2s, "second"));
      ADD_FAILURE() << "gather should have raised";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "first");
    }
    EXPECT_EQ(loop().now().time_since_epoch(), 1s);
    EXPECT_FALSE(slow.done());
    EXPECT_EQ(co_await slow, 1);  // Still running, not cancelled.
  };
  v.loop().set_exception_handler([](const std::string&, std::exception_ptr) {});
  v.run(body());
  EXPECT_EQ(v.elapsed(), 5s);
}

TEST(Gather, OutcomesCollectValuesExceptionsAndCancellationsInOrder) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    auto doomed = loop().create_task(sleep_then(3s, 0));
    loop().call_later(1s, [doomed] { doomed.cancel(); });
    std::vector<TaskHandle<int>> tasks{loop().create_task(sleep_then(2s, 7)),
                                       loop().create_task(fail_after(1s, "bad")), doomed};
    auto outcomes = co_await gather_outcomes(std::move(tasks));
    EXPECT_EQ(outcomes.size(), 3u);
    EXPECT_TRUE(outcomes[0].ok());
    EXPECT_EQ(outcomes[0].value(), 7);
    EXPECT_FALSE(outcomes[1].ok());
    EXPECT_THROW(outcomes[1].value(), std::runtime_error);
    EXPECT_FALSE(outcomes[1].cancelled());
    EXPECT_TRUE(outcomes[2].cancelled());
  };
  v.run(body());
  EXPECT_EQ(v.elapsed(), 2s);
}

TEST(Gather, ACancelledChildMakesGatherRaiseCancelledError) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    auto child = loop().create_task(sleep_then(3s, 0));
    loop().call_later(1s, [child] { child.cancel(); });
    EXPECT_THROW(co_await gather(child, sleep_then(2s, 1)), CancelledError);
    EXPECT_EQ(loop().now().time_since_epoch(), 1s);
  };
  v.run(body());
}

TEST(Gather, CancellingTheAwaiterCancelsEveryChildAndRaisesOnceTheyFinish) {
  VirtualLoop v;
  bool child_cleaned_up = false;
  auto stubborn = [&]() -> Task<int> {
    bool cancelled = false;
    try {
      co_await sleep(10s);
    } catch (const CancelledError&) {
      cancelled = true;
    }
    if (cancelled) {
      co_await sleep(1s);  // Takes a second to wind down.
      child_cleaned_up = true;
      throw CancelledError();
    }
    co_return 0;
  };
  auto body = [&]() -> Task<void> {
    auto a = loop().create_task(sleep_then(10s, 1));
    auto b = loop().create_task(stubborn());
    auto outer = loop().create_task(gather(a, b));
    co_await sleep(2s);
    outer.cancel();
    EXPECT_THROW(co_await outer, CancelledError);
    EXPECT_TRUE(a.cancelled());
    EXPECT_TRUE(b.cancelled());
    EXPECT_EQ(loop().now().time_since_epoch(), 3s);
  };
  v.run(body());
  EXPECT_TRUE(child_cleaned_up);
}

TEST(Gather, AnExceptionAndACancellationInOneGatherReportWhicheverCameFirst) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    auto cancelled_first = loop().create_task(sleep_then(5s, 0));
    loop().call_later(1s, [cancelled_first] { cancelled_first.cancel(); });
    EXPECT_THROW(co_await gather(cancelled_first, fail_after(2s, "later")), CancelledError);

    auto cancelled_later = loop().create_task(sleep_then(5s, 0));
    loop().call_later(2s, [cancelled_later] { cancelled_later.cancel(); });
    EXPECT_THROW(co_await gather(cancelled_later, fail_after(1s, "first")), std::runtime_error);
    co_await sleep(5s);
  };
  v.loop().set_exception_handler([](const std::string&, std::exception_ptr) {});
  v.run(body());
}

TEST(Gather, AnEmptyGatherCompletesAtOnce) {
  VirtualLoop v;
  auto body = []() -> Task<size_t> {
    co_return (co_await gather(std::vector<TaskHandle<int>>{})).size();
  };
  EXPECT_EQ(v.run(body()), 0u);
  EXPECT_EQ(v.elapsed(), 0s);
}

TEST(Gather, AMillionTasksAllComplete) {
  VirtualLoop v;
  constexpr int kTasks = 1'000'000;
  auto body = []() -> Task<long> {
    std::vector<TaskHandle<int>> tasks;
    tasks.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i)
      tasks.push_back(loop().create_task(sleep_then(Duration(1ms) * (i % 1000), 1)));
    long sum = 0;
    for (int value : co_await gather(std::move(tasks))) sum += value;
    co_return sum;
  };
  EXPECT_EQ(v.run(body()), kTasks);
  EXPECT_EQ(v.elapsed(), 999ms);
  EXPECT_EQ(v.loop().pending_task_count(), 0u);
}

}  // namespace
}  // namespace taskwire
