#include "core/task_group.h"

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

std::vector<std::string> messages(const ExceptionGroup& group) {
  std::vector<std::string> out;
  for (const auto& e : group.exceptions()) out.push_back(describe(e));
  return out;
}

TEST(TaskGroup, WaitsForEveryTaskItStarted) {
  VirtualLoop v;
  std::vector<TaskHandle<int>> tasks;
  auto body = [&]() -> Task<void> {
    co_await with_task_group([&](TaskGroup& group) -> Task<void> {
      tasks.push_back(group.create_task(sleep_then(1s, 1)));
      tasks.push_back(group.create_task(sleep_then(3s, 3)));
      co_return;
    });
    EXPECT_EQ(loop().now().time_since_epoch(), 3s);
  };
  v.run(body());
  EXPECT_EQ(tasks[0].result() + tasks[1].result(), 4);
}

TEST(TaskGroup, AFailureCancelsTheSiblingsAndTheBodyThenRaisesAnExceptionGroup) {
  VirtualLoop v;
  std::vector<TaskHandle<int>> siblings;
  bool body_saw_cancellation = false;
  auto body = [&]() -> Task<void> {
    try {
      co_await with_task_group([&](TaskGroup& group) -> Task<void> {
        siblings.push_back(group.create_task(sleep_then(10s, 1)));
        group.create_task(fail_after(1s, "boom"));
        try {
          co_await sleep(100s);
        } catch (const CancelledError&) {
          body_saw_cancellation = true;
          throw;
        }
      });
      ADD_FAILURE() << "with_task_group should have raised";
    } catch (const ExceptionGroup& group) {
      EXPECT_EQ(messages(group), (std::vector<std::string>{"boom"}));
    }
    EXPECT_EQ(loop().now().time_since_epoch(), 1s);
  };
  v.run(body());
  EXPECT_TRUE(body_saw_cancellation);
  EXPECT_TRUE(siblings[0].cancelled());
}

TEST(TaskGroup, CollectsEveryFailureIncludingTheBodys) {
  VirtualLoop v;
  auto body = [&]() -> Task<void> {
    try {
      co_await with_task_group([&](TaskGroup& group) -> Task<void> {
        group.create_task(fail_after(1s, "child"));
        throw std::logic_error("body");
        co_return;
      });
    } catch (const ExceptionGroup& group) {
      // The body failed first, so the child was cancelled before failing.
      EXPECT_EQ(messages(group), (std::vector<std::string>{"body"}));
    }
  };
  v.run(body());
}

TEST(TaskGroup, CancellingTheOwnerCancelsTheWholeGroup) {
  VirtualLoop v;
  std::vector<TaskHandle<int>> members;
  auto grouped = [&]() -> Task<void> {
    co_await with_task_group([&](TaskGroup& group) -> Task<void> {
      members.push_back(group.create_task(sleep_then(10s, 1)));
      members.push_back(group.create_task(sleep_then(20s, 2)));
      co_return;
    });
  };
  auto body = [&]() -> Task<void> {
    auto owner = loop().create_task(grouped());
    co_await sleep(1s);
    owner.cancel();
    EXPECT_THROW(co_await owner, CancelledError);
    EXPECT_TRUE(members[0].cancelled());
    EXPECT_TRUE(members[1].cancelled());
  };
  v.run(body());
  EXPECT_EQ(v.elapsed(), 1s);
}

TEST(TaskGroup, RefusesNewTasksOnceShuttingDown) {
  VirtualLoop v;
  bool refused = false;
  auto body = [&]() -> Task<void> {
    try {
      co_await with_task_group([&](TaskGroup& group) -> Task<void> {
        group.create_task(fail_after(1s, "boom"));
        try {
          co_await sleep(5s);
        } catch (const CancelledError&) {
        }
        try {
          group.create_task(sleep_then(1s, 1));
        } catch (const InvalidStateError&) {
          refused = true;
        }
      });
    } catch (const ExceptionGroup&) {
    }
  };
  v.run(body());
  EXPECT_TRUE(refused);
}

}  // namespace
}  // namespace taskwire
