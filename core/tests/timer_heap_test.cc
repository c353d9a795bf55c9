#include "core/detail/timer_heap.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <set>
#include <utility>
#include <vector>

namespace taskwire::detail {
namespace {

struct TestTimer final : TimerNode {
  int id = 0;
  void fire() override {}
};

TimePoint at(int ms) { return TimePoint(std::chrono::milliseconds(ms)); }

TEST(TimerHeap, PopsInDeadlineOrderAndEqualDeadlinesInArmingOrder) {
  TimerHeap heap;
  std::vector<TestTimer> timers(6);
  int deadlines[] = {30, 10, 20, 10, 30, 10};
  for (int i = 0; i < 6; ++i) {
    timers[i].id = i;
    heap.arm(&timers[i], at(deadlines[i]));
  }
  std::vector<int> order;
  while (!heap.empty()) order.push_back(static_cast<TestTimer*>(heap.pop())->id);
  EXPECT_EQ(order, (std::vector<int>{1, 3, 5, 2, 0, 4}));
}

TEST(TimerHeap, MatchesAnOrderedSetUnderRandomArmsAndCancels) {
  TimerHeap heap;
  constexpr int kTimers = 5000;
  std::vector<TestTimer> timers(kTimers);
  std::set<std::pair<int, int>> model;  // (deadline, arming order)
  std::vector<int> armed_order(kTimers, -1);
  std::mt19937 rng(7);
  int arming = 0;
  for (int step = 0; step < 50'000; ++step) {
    int i = static_cast<int>(rng() % kTimers);
    timers[i].id = i;
    if (timers[i].armed() && rng() % 2 == 0) {
      model.erase({timers[i].deadline().time_since_epoch().count(), armed_order[i]});
      heap.cancel(&timers[i]);
    } else {
      if (timers[i].armed())
        model.erase({timers[i].deadline().time_since_epoch().count(), armed_order[i]});
      int ms = static_cast<int>(rng() % 1000);
      heap.arm(&timers[i], at(ms));
      armed_order[i] = arming++;
      model.insert({at(ms).time_since_epoch().count(), armed_order[i]});
    }
    ASSERT_EQ(heap.size(), model.size());
  }
  while (!heap.empty()) {
    auto* timer = static_cast<TestTimer*>(heap.pop());
    ASSERT_FALSE(timer->armed());
    auto expected = *model.begin();
    model.erase(model.begin());
    EXPECT_EQ(timer->deadline().time_since_epoch().count(), expected.first);
    EXPECT_EQ(armed_order[timer->id], expected.second);
  }
}

TEST(TimerHeap, CancellingAnUnarmedTimerDoesNothing) {
  TimerHeap heap;
  TestTimer timer;
  heap.cancel(&timer);
  heap.arm(&timer, at(5));
  heap.cancel(&timer);
  heap.cancel(&timer);
  EXPECT_TRUE(heap.empty());
  EXPECT_FALSE(timer.armed());
}

}  // namespace
}  // namespace taskwire::detail
