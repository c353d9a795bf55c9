#include "core/task.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "core/tests/test_loop.h"

namespace taskwire {
namespace {

using testing::VirtualLoop;

Task<int> value(int v) { co_return v; }

Task<int> chain(int depth) {
  if (depth == 0) co_return 0;
  co_return co_await chain(depth - 1) + 1;
}

Task<void> throws_runtime_error() {
  throw std::runtime_error("inner failure");
  co_return;
}

Task<std::string> rethrows_through_levels(int depth) {
  if (depth == 0) {
    co_await throws_runtime_error();
    co_return "unreachable";
  }
  co_return co_await rethrows_through_levels(depth - 1);
}

// Counts copies and moves, to check what awaiting does with results.
struct Counted {
  static inline int copies = 0;
  static inline int moves = 0;
  Counted() = default;
  Counted(const Counted&) { ++copies; }
  Counted(Counted&&) noexcept { ++moves; }
  Counted& operator=(const Counted&) = default;
  Counted& operator=(Counted&&) = default;
};

TEST(Task, AwaitingGivesTheCoroutinesValue) {
  VirtualLoop v;
  auto body = []() -> Task<int> { co_return co_await value(7) + co_await value(8); };
  EXPECT_EQ(v.run(body()), 15);
}

TEST(Task, DoesNotStartUntilAwaited) {
  VirtualLoop v;
  bool ran = false;
  auto mark_ran = [&]() -> Task<void> {
    ran = true;
    co_return;
  };
  auto body = [&]() -> Task<void> {
    auto lazy = mark_ran();
    EXPECT_FALSE(ran);
    co_await lazy;
    EXPECT_TRUE(ran);
  };
  v.run(body());
}

TEST(Task, ExceptionsPropagateThroughEveryLevel) {
  VirtualLoop v;
  EXPECT_THROW(v.run(rethrows_through_levels(50)), std::runtime_error);
}

// The sanitizers instrument every frame, which stops GCC from making the
// sibling call that symmetric transfer relies on; the depth it can reach is
// then bounded by the stack.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kDeepChain = 1'000;
#else
constexpr int kDeepChain = 1'000'000;
#endif

TEST(Task, AMillionNestedAwaitsNeitherOverflowTheStackNorFail) {
  VirtualLoop v;
  EXPECT_EQ(v.run(chain(kDeepChain)), kDeepChain);
}

TEST(Task, AwaitingAnRvalueMovesTheResultOutWithoutCopying) {
  VirtualLoop v;
  Counted::copies = 0;
  auto body = []() -> Task<void> {
    auto make = []() -> Task<Counted> { co_return Counted{}; };
    Counted c = co_await make();
    (void)c;
  };
  v.run(body());
  EXPECT_EQ(Counted::copies, 0);
}

TEST(Task, AwaitingAnLvalueGivesAReferenceToTheResult) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    auto task = value(5);
    int& ref = co_await task;
    ref = 6;
    EXPECT_EQ(co_await task, 6);  // Awaiting a finished task gives its result again.
  };
  v.run(body());
}

TEST(Task, MoveOnlyResultsAreSupported) {
  VirtualLoop v;
  auto body = []() -> Task<std::unique_ptr<int>> { co_return std::make_unique<int>(3); };
  auto outer = [&]() -> Task<int> { co_return *co_await body(); };
  EXPECT_EQ(v.run(outer()), 3);
}

TEST(Task, AwaitingAnEmptyTaskIsAnInvalidStateError) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    Task<int> moved_from = value(1);
    Task<int> taken = std::move(moved_from);
    EXPECT_THROW(co_await moved_from, InvalidStateError);
    EXPECT_EQ(co_await taken, 1);
  };
  v.run(body());
}

TEST(Task, DestroyingAnUnstartedTaskRunsNothing) {
  bool ran = false;
  auto mark_ran = [&]() -> Task<void> {
    ran = true;
    co_return;
  };
  { auto task = mark_ran(); }
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace taskwire
