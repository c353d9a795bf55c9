#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/event_loop.h"
#include "core/sleep.h"
#include "core/tests/test_loop.h"

namespace taskwire {
namespace {

using namespace std::chrono_literals;
using testing::fail_after;
using testing::loop;
using testing::sleep_then;
using testing::VirtualLoop;

Task<int> await_task(TaskHandle<int> t) { co_return co_await t; }

TEST(Cancellation, CancelBeforeTheFirstStepMeansTheBodyNeverRuns) {
  VirtualLoop v;
  bool ran = false;
  // A coroutine lambda must outlive its task: it is the frame's `this`.
  auto work = [&]() -> Task<void> {
    ran = true;
    co_return;
  };
  auto body = [&]() -> Task<void> {
    auto task = loop().create_task(work());
    EXPECT_TRUE(task.cancel());
    EXPECT_THROW(co_await task, CancelledError);
    EXPECT_TRUE(task.cancelled());
  };
  v.run(body());
  EXPECT_FALSE(ran);
}

TEST(Cancellation, CancellingASleepingTaskWakesItAtOnce) {
  VirtualLoop v;
  auto body = [&]() -> Task<void> {
    auto sleeper = loop().create_task(sleep_then(10s, 1));
    co_await sleep(1s);
    sleeper.cancel();
    EXPECT_THROW(co_await sleeper, CancelledError);
  };
  v.run(body());
  EXPECT_EQ(v.elapsed(), 1s);
  EXPECT_EQ(v.loop().pending_timer_count(), 0u);
}

TEST(Cancellation, ACancelledTaskReportsCancelledAndItsResultRaises) {
  VirtualLoop v;
  auto body = [&]() -> Task<void> {
    auto task = loop().create_task(sleep_then(5s, 1));
    co_await sleep(0s);
    task.cancel();
    co_await sleep(0s);
    co_await sleep(0s);
    EXPECT_TRUE(task.done());
    EXPECT_TRUE(task.cancelled());
    EXPECT_THROW(task.result(), CancelledError);
    EXPECT_THROW(task.exception(), CancelledError);
  };
  v.run(body());
}

TEST(Cancellation, CancellingAFinishedTaskDoesNothing) {
  VirtualLoop v;
  auto body = [&]() -> Task<void> {
    auto task = loop().create_task(sleep_then(1s, 9));
    EXPECT_EQ(co_await task, 9);
    EXPECT_FALSE(task.cancel());
    EXPECT_FALSE(task.cancelled());
    EXPECT_EQ(task.result(), 9);
  };
  v.run(body());
}

TEST(Cancellation, ATaskMayCatchCancellationToCleanUpAndReturn) {
  VirtualLoop v;
  std::vector<std::string> log;
  auto worker = [&]() -> Task<int> {
    bool cancelled = false;
    try {
      co_await sleep(10s);
    } catch (const CancelledError&) {
      cancelled = true;
    }
    if (!cancelled) co_return 0;
    log.push_back("cleaning up");
    co_await sleep(1s);  // Cleanup may itself suspend.
    log.push_back("cleaned up");
    co_return -1;
  };
  auto body = [&]() -> Task<void> {
    auto task = loop().create_task(worker());
    co_await sleep(2s);
    task.cancel();
    EXPECT_EQ(co_await task, -1);
    EXPECT_FALSE(task.cancelled());
  };
  v.run(body());
  EXPECT_EQ(log, (std::vector<std::string>{"cleaning up", "cleaned up"}));
  EXPECT_EQ(v.elapsed(), 3s);
}

TEST(Cancellation, CancellingATaskThatAwaitsAnotherCancelsBoth) {
  VirtualLoop v;
  auto body = [&]() -> Task<void> {
    auto inner = loop().create_task(sleep_then(10s, 1));
    auto outer = loop().create_task(await_task(inner));
    co_await sleep(1s);
    outer.cancel();
    EXPECT_THROW(co_await outer, CancelledError);
    EXPECT_TRUE(inner.cancelled());
  };
  v.run(body());
  EXPECT_EQ(v.elapsed(), 1s);
}

TEST(Cancellation, CancelAfterWakeUpButBeforeRunningRaisesAtThatAwait) {
  VirtualLoop v;
  bool resumed_normally = false;
  auto sleeper = [&]() -> Task<void> {
    co_await sleep(1s);
    resumed_normally = true;
  };
  auto body = [&]() -> Task<void> {
    auto task = loop().create_task(sleeper());
    // Both timers are due at 1 s; the task's fires first and schedules it,
    // then this callback cancels it before it has run.
    loop().call_later(1s, [task] { task.cancel(); });
    co_await sleep(2s);
    EXPECT_TRUE(task.cancelled());
  };
  v.run(body());
  EXPECT_FALSE(resumed_normally);
}

TEST(Cancellation, ATaskThatCancelsItselfAndReturnsIsCancelled) {
  VirtualLoop v;
  auto cancels_itself = []() -> Task<int> {
    detail::current_task()->cancel();
    co_return 1;
  };
  auto body = [&]() -> Task<void> {
    auto task = loop().create_task(cancels_itself());
    co_await sleep(0s);
    co_await sleep(0s);
    EXPECT_TRUE(task.cancelled());
  };
  v.run(body());
}

TEST(Cancellation, DoneCallbacksRunInRegistrationOrderThroughTheLoop) {
  VirtualLoop v;
  std::vector<std::string> order;
  auto body = [&]() -> Task<void> {
    auto task = loop().create_task(sleep_then(1s, 4));
    task.add_done_callback(
        [&](const TaskHandle<int>& t) { order.push_back("first:" + std::to_string(t.result())); });
    task.add_done_callback([&](const TaskHandle<int>&) { order.push_back("second"); });
    co_await task;
    order.push_back("awaiter");
    co_await sleep(0s);
    // A callback added after completion is scheduled at once.
    task.add_done_callback([&](const TaskHandle<int>&) { order.push_back("late"); });
    EXPECT_EQ(order.back(), "awaiter");
    co_await sleep(0s);
  };
  v.run(body());
  EXPECT_EQ(order, (std::vector<std::string>{"first:4", "second", "awaiter", "late"}));
}

TEST(Shutdown, RunCancelsTasksStillPendingWhenMainReturns) {
  VirtualLoop v;
  bool cleaned_up = false;
  auto forever = [&]() -> Task<void> {
    try {
      co_await sleep(1h);
    } catch (const CancelledError&) {
      cleaned_up = true;
      throw;
    }
  };
  auto body = [&]() -> Task<void> {
    loop().create_task(forever());
    co_await sleep(1s);
  };
  v.run(body());
  EXPECT_TRUE(cleaned_up);
  EXPECT_EQ(v.loop().pending_task_count(), 0u);
  EXPECT_EQ(v.elapsed(), 1s);
}

TEST(Shutdown, FailuresNobodyRetrievedAreReportedOnce) {
  VirtualLoop v;
  std::vector<std::string> reports;
  v.loop().set_exception_handler([&](const std::string& message, std::exception_ptr error) {
    reports.push_back(message + ": " + describe(error));
  });
  auto fails = [](std::string what) -> Task<void> {
    co_await sleep(1s);
    throw std::runtime_error(what);
  };
  auto body = [&]() -> Task<void> {
    loop().create_task(fails("dropped"),
                       "dropped-task");  // Handle dropped: reported when it fails.
    auto kept =
        loop().create_task(fails("kept"), "kept-task");  // Never awaited: reported at shutdown.
    auto retrieved = loop().create_task(fails("retrieved"));
    co_await sleep(2s);
    EXPECT_NE(retrieved.exception(), nullptr);
    EXPECT_TRUE(reports.size() == 1u);
    co_return;
  };
  v.run(body());
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0], "Exception of task 'dropped-task' was never retrieved: dropped");
  EXPECT_EQ(reports[1], "Exception of task 'kept-task' was never retrieved: kept");
}

TEST(Shutdown, DestroyingALoopWithUnrunTasksFreesThem) {
  VirtualClock clock;
  bool ran = false;
  auto work = [&]() -> Task<void> {
    ran = true;
    co_return;
  };
  {
    EventLoop loop(clock);
    auto handle = loop.create_task(work());
    loop.call_later(1s, [&] { ran = true; });
    EXPECT_FALSE(handle.done());
    handle = {};
  }
  EXPECT_FALSE(ran);  // And the sanitizers see no leak.
}

}  // namespace
}  // namespace taskwire
