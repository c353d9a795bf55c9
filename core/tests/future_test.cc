#include "core/future.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "core/gather.h"
#include "core/shield.h"
#include "core/sleep.h"
#include "core/tests/test_loop.h"
#include "core/wait_for.h"

namespace taskwire {
namespace {

using namespace std::chrono_literals;
using testing::loop;
using testing::sleep_then;
using testing::VirtualLoop;

TEST(Future, AwaitingItGivesTheValueSetLater) {
  VirtualLoop v;
  auto body = []() -> Task<int> {
    Future<int> future(loop());
    loop().call_later(1s, [future] { future.set_result(42); });
    co_return co_await future.handle();
  };
  EXPECT_EQ(v.run(body()), 42);
  EXPECT_EQ(v.elapsed(), 1s);
}

TEST(Future, AnExceptionSetOnItIsRethrownToEveryAwaiter) {
  VirtualLoop v;
  auto body = []() -> Task<int> {
    Future<int> future(loop());
    loop().call_later(1s, [future] {
      future.set_exception(std::make_exception_ptr(std::runtime_error("boom")));
    });
    auto awaiter = [](TaskHandle<int> h) -> Task<std::string> {
      try {
        co_await h;
      } catch (const std::runtime_error& e) {
        co_return e.what();
      }
      co_return "no exception";
    };
    auto [a, b] = co_await gather(awaiter(future.handle()), awaiter(future.handle()));
    EXPECT_EQ(a, "boom");
    EXPECT_EQ(b, "boom");
    co_return 0;
  };
  v.run(body());
}

TEST(Future, OnlyTheFirstOutcomeCounts) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    Future<int> future(loop());
    EXPECT_FALSE(future.done());
    EXPECT_TRUE(future.set_result(1));
    EXPECT_FALSE(future.set_result(2));
    EXPECT_FALSE(future.set_exception(std::make_exception_ptr(std::runtime_error("late"))));
    EXPECT_FALSE(future.set_cancelled());
    EXPECT_TRUE(future.done());
    EXPECT_EQ(co_await future.handle(), 1);
  };
  v.run(body());
}

TEST(Future, CancellingAPendingFutureCancelsItAtOnce) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    Future<int> future(loop());
    EXPECT_TRUE(future.handle().cancel());
    EXPECT_TRUE(future.handle().cancelled());
    EXPECT_FALSE(future.set_result(1));
    EXPECT_THROW(co_await future.handle(), CancelledError);
  };
  v.run(body());
}

TEST(Future, WaitForCancelsItOnTimeout) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    Future<int> future(loop());
    EXPECT_THROW(co_await wait_for(future.handle(), 1s), TimeoutError);
    EXPECT_TRUE(future.handle().cancelled());
  };
  v.run(body());
  EXPECT_EQ(v.elapsed(), 1s);
}

TEST(Future, MixesWithCoroutineTasksInGather) {
  VirtualLoop v;
  auto body = []() -> Task<std::vector<int>> {
    Future<int> future(loop());
    loop().call_later(2s, [future] { future.set_result(2); });
    std::vector<TaskHandle<int>> all{loop().create_task(sleep_then(1s, 1)), future.handle()};
    co_return co_await gather(std::move(all));
  };
  EXPECT_EQ(v.run(body()), (std::vector<int>{1, 2}));
  EXPECT_EQ(v.elapsed(), 2s);
}

TEST(Future, ShieldingItKeepsItPendingWhenTheAwaiterIsCancelled) {
  VirtualLoop v;
  auto body = []() -> Task<void> {
    Future<int> future(loop());
    auto awaiting = loop().create_task(
        [](TaskHandle<int> h) -> Task<int> { co_return co_await shield(h); }(future.handle()));
    co_await sleep(1s);
    awaiting.cancel();
    EXPECT_THROW(co_await awaiting, CancelledError);
    EXPECT_FALSE(future.done());
    future.set_result(3);
    EXPECT_EQ(co_await future.handle(), 3);
  };
  v.run(body());
}

// Stands for work elsewhere: a cancel request is passed on, and the future
// finishes once that work says how it ended.
class DeferredCancelState final : public detail::FutureState<int> {
 public:
  using FutureState::FutureState;
  int cancel_requests = 0;

 private:
  void on_cancel_requested() override { ++cancel_requests; }
};

TEST(Future, ASubclassMayFinishLaterThanTheCancelRequest) {
  VirtualLoop v;
  auto body = []() -> Task<int> {
    auto* state = new DeferredCancelState(loop());
    TaskHandle<int> handle(state);
    EXPECT_TRUE(handle.cancel());
    EXPECT_EQ(state->cancel_requests, 1);
    EXPECT_FALSE(handle.done());
    // The work elsewhere finished before it saw the request.
    loop().call_later(1s, [state] { state->set_result(7); });
    co_return co_await handle;
  };
  EXPECT_EQ(v.run(body()), 7);
  EXPECT_EQ(v.elapsed(), 1s);
}

TEST(Future, APendingFutureIsCancelledWhenTheLoopShutsDown) {
  VirtualLoop v;
  TaskHandle<int> kept;
  auto body = [&kept]() -> Task<void> {
    Future<int> future(loop());
    kept = future.handle();
    co_return;
  };
  v.run(body());
  EXPECT_TRUE(kept.cancelled());
}

}  // namespace
}  // namespace taskwire
