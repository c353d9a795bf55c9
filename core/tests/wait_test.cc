#include "core/wait.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "core/as_completed.h"
#include "core/shield.h"
#include "core/sleep.h"
#include "core/tests/test_loop.h"
#include "core/wait_for.h"

namespace taskwire {
namespace {

using namespace std::chrono_literals;
using testing::fail_after;
using testing::loop;
using testing::sleep_then;
using testing::VirtualLoop;

std::vector<TaskHandle<int>> start(std::vector<Task<int>> coros) {
  std::vector<TaskHandle<int>> tasks;
  for (auto& coro : coros) tasks.push_back(loop().create_task(std::move(coro)));
  return tasks;
}

Task<int> await_shielded(TaskHandle<int> task) { co_return co_await shield(task); }

TEST(Wait, FirstCompletedReturnsAsSoonAsOneFinishes) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    std::vector<Task<int>> coros;
    coros.push_back(sleep_then(3s, 0));
    coros.push_back(sleep_then(1s, 1));
    coros.push_back(sleep_then(2s, 2));
    auto tasks = start(std::move(coros));
    auto [done, pending] = co_await wait(tasks, ReturnWhen::kFirstCompleted);
    EXPECT_EQ(loop().now().time_since_epoch(), 1s);
    EXPECT_EQ(done.size(), 1u);
    EXPECT_TRUE(!done.empty() && done[0] == tasks[1]);
    EXPECT_EQ(pending.size(), 2u);
    co_await sleep(5s);
  };
  v.run(body());
}

TEST(Wait, FirstExceptionReturnsOnAFailureButNotOnACancellation) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    std::vector<Task<int>> coros;
    coros.push_back(sleep_then(5s, 0));
    coros.push_back(sleep_then(3s, 1));
    coros.push_back(fail_after(2s));
    auto tasks = start(std::move(coros));
    loop().call_later(1s, [t = tasks[1]] { t.cancel(); });
    auto [done, pending] = co_await wait(tasks, ReturnWhen::kFirstException);
    EXPECT_EQ(loop().now().time_since_epoch(), 2s);
    EXPECT_EQ(done.size(), 2u);
    EXPECT_EQ(pending.size(), 1u);
    EXPECT_NE(tasks[2].exception(), nullptr);
    co_await sleep(5s);
  };
  v.run(body());
}

TEST(Wait, AllCompletedWithATimeoutReturnsWhatIsDoneAndCancelsNothing) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    std::vector<Task<int>> coros;
    coros.push_back(sleep_then(1s, 0));
    coros.push_back(sleep_then(10s, 1));
    auto tasks = start(std::move(coros));
    auto [done, pending] = co_await wait(tasks, ReturnWhen::kAllCompleted, 2s);
    EXPECT_EQ(loop().now().time_since_epoch(), 2s);
    EXPECT_EQ(done.size(), 1u);
    EXPECT_EQ(pending.size(), 1u);
    EXPECT_FALSE(tasks[1].cancelled());
    EXPECT_EQ(co_await tasks[1], 1);
  };
  v.run(body());
  EXPECT_EQ(v.elapsed(), 10s);
}

TEST(Wait, CountReturnsOnceThatManyAreDone) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    std::vector<Task<int>> coros;
    for (int i = 1; i <= 5; ++i) coros.push_back(sleep_then(Duration(1s) * i, i));
    auto tasks = start(std::move(coros));
    auto result = co_await wait(
        tasks,
        WaitOptions{.return_when = ReturnWhen::kAllCompleted, .timeout = std::nullopt, .count = 3});
    EXPECT_EQ(loop().now().time_since_epoch(), 3s);
    EXPECT_EQ(result.done.size(), 3u);
    EXPECT_EQ(result.pending.size(), 2u);
    co_await sleep(5s);
  };
  v.run(body());
}

TEST(Wait, CancellingTheWaiterLeavesTheTasksRunning) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    auto tasks = start([] {
      std::vector<Task<int>> coros;
      coros.push_back(sleep_then(5s, 0));
      return coros;
    }());
    auto waiter = loop().create_task(wait(tasks));
    co_await sleep(1s);
    waiter.cancel();
    EXPECT_THROW(co_await waiter, CancelledError);
    EXPECT_FALSE(tasks[0].done());
    EXPECT_EQ(co_await tasks[0], 0);
  };
  v.run(body());
}

TEST(WaitFor, ReturnsTheValueWhenTheTaskFinishesInTime) {
  VirtualLoop v;
  auto body = []() -> Task<int> { co_return co_await wait_for(sleep_then(1s, 5), 2s); };
  EXPECT_EQ(v.run(body()), 5);
  EXPECT_EQ(v.elapsed(), 1s);
  EXPECT_EQ(v.loop().pending_timer_count(), 0u);
}

TEST(WaitFor, CancelsTheTaskAndRaisesTimeoutErrorAtTheDeadline) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    auto task = loop().create_task(sleep_then(10s, 1));
    EXPECT_THROW(co_await wait_for(task, 2s), TimeoutError);
    EXPECT_TRUE(task.cancelled());
    EXPECT_EQ(loop().now().time_since_epoch(), 2s);
  };
  v.run(body());
}

TEST(WaitFor, WaitsForTheCancelledTaskToFinishCleaningUp) {
  VirtualLoop v;
  auto slow_to_cancel = []() -> Task<int> {
    bool cancelled = false;
    try {
      co_await sleep(10s);
    } catch (const CancelledError&) {
      cancelled = true;
    }
    if (cancelled) {
      co_await sleep(1s);
      throw CancelledError();
    }
    co_return 0;
  };
  auto body = [&]() -> Task<void> {
    EXPECT_THROW(co_await wait_for(slow_to_cancel(), 2s), TimeoutError);
  };
  v.run(body());
  EXPECT_EQ(v.elapsed(), 3s);
}

TEST(WaitFor, ATaskThatIgnoresTheCancellationGivesItsOwnValue) {
  VirtualLoop v;
  auto ignores = []() -> Task<int> {
    try {
      co_await sleep(10s);
    } catch (const CancelledError&) {
    }
    co_return 7;
  };
  auto body = [&]() -> Task<int> { co_return co_await wait_for(ignores(), 2s); };
  EXPECT_EQ(v.run(body()), 7);
}

TEST(WaitFor, ATimeoutRacingCompletionInTheSamePassCancelsTheTask) {
  // Both the task's sleep and the deadline fall due at 1 s. The task's timer
  // was armed first, so it is woken first, but the deadline fires in the
  // same pass, before the task runs: as in asyncio, the task sees
  // CancelledError at its sleep and wait_for raises TimeoutError.
  VirtualLoop v;
  auto body = []() -> Task<void> {
    auto task = loop().create_task(sleep_then(1s, 1));
    co_await sleep(0s);  // Let the task arm its timer first.
    EXPECT_THROW(co_await wait_for(task, 1s), TimeoutError);
    EXPECT_TRUE(task.cancelled());
  };
  v.run(body());
  EXPECT_EQ(v.elapsed(), 1s);
}

TEST(WaitFor, ATaskThatFinishedAPassBeforeTheDeadlineWins) {
  VirtualLoop v;
  auto body = []() -> Task<int> {
    auto task = loop().create_task(sleep_then(999ms, 3));
    co_return co_await wait_for(task, 1s);
  };
  EXPECT_EQ(v.run(body()), 3);
}

TEST(WaitFor, CancellingTheWaiterCancelsTheTask) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    auto inner = loop().create_task(sleep_then(10s, 1));
    auto outer = loop().create_task(wait_for(inner, 5s));
    co_await sleep(1s);
    outer.cancel();
    EXPECT_THROW(co_await outer, CancelledError);
    EXPECT_TRUE(inner.cancelled());
  };
  v.run(body());
  EXPECT_EQ(v.elapsed(), 1s);
}

TEST(WaitFor, AZeroTimeoutCancelsAnUnfinishedTaskAtOnce) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    EXPECT_THROW(co_await wait_for(sleep_then(1s, 1), 0s), TimeoutError);
  };
  v.run(body());
  EXPECT_EQ(v.elapsed(), 0s);
}

TEST(AsCompleted, YieldsTasksInCompletionOrder) {
  VirtualLoop v;
  auto body = []() -> Task<std::vector<int>> {
    std::vector<Task<int>> coros;
    for (int seconds : {3, 1, 2}) coros.push_back(sleep_then(Duration(1s) * seconds, seconds));
    auto pending = as_completed(start(std::move(coros)));
    std::vector<int> order;
    while (!pending.empty()) {
      TaskHandle<int> next = co_await pending.next();
      order.push_back(next.result());
      EXPECT_EQ(loop().now().time_since_epoch(), Duration(1s) * order.back());
    }
    co_return order;
  };
  EXPECT_EQ(v.run(body()), (std::vector<int>{1, 2, 3}));
}

TEST(AsCompleted, RaisesTimeoutErrorAtTheDeadlineWithoutCancelling) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    std::vector<Task<int>> coros;
    coros.push_back(sleep_then(1s, 1));
    coros.push_back(sleep_then(5s, 5));
    auto tasks = start(std::move(coros));
    auto pending = as_completed(tasks, 2s);
    EXPECT_EQ((co_await pending.next()).result(), 1);
    EXPECT_THROW(co_await pending.next(), TimeoutError);
    EXPECT_EQ(loop().now().time_since_epoch(), 2s);
    EXPECT_FALSE(tasks[1].cancelled());
    co_await tasks[1];
  };
  v.run(body());
}

TEST(Shield, CancellingTheAwaiterDoesNotCancelTheShieldedTask) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    auto precious = loop().create_task(sleep_then(3s, 42));
    auto awaiter = loop().create_task(await_shielded(precious));
    co_await sleep(1s);
    awaiter.cancel();
    EXPECT_THROW(co_await awaiter, CancelledError);
    EXPECT_EQ(loop().now().time_since_epoch(), 1s);
    EXPECT_FALSE(precious.cancelled());
    EXPECT_EQ(co_await precious, 42);
  };
  v.run(body());
  EXPECT_EQ(v.elapsed(), 3s);
}

}  // namespace
}  // namespace taskwire
