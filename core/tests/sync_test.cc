#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/event.h"
#include "core/gather.h"
#include "core/queue.h"
#include "core/semaphore.h"
#include "core/sleep.h"
#include "core/tests/test_loop.h"

namespace taskwire {
namespace {

using namespace std::chrono_literals;
using testing::loop;
using testing::VirtualLoop;

TEST(Event, SetWakesEveryWaiterAndLaterWaitsReturnAtOnce) {
  VirtualLoop v;
  Event event;
  int woken = 0;
  auto waiter = [&]() -> Task<void> {
    co_await event.wait();
    ++woken;
  };
  auto body = [&]() -> Task<void> {
    auto a = loop().create_task(waiter());
    auto b = loop().create_task(waiter());
    co_await sleep(1s);
    EXPECT_EQ(woken, 0);
    event.set();
    co_await gather(a, b);
    EXPECT_EQ(woken, 2);
    co_await event.wait();  // Already set.
    event.clear();
    EXPECT_FALSE(event.is_set());
  };
  v.run(body());
  EXPECT_EQ(v.elapsed(), 1s);
}

TEST(Event, ACancelledWaiterLeavesTheOthersWaiting) {
  VirtualLoop v;
  Event event;
  auto body = [&]() -> Task<void> {
    auto a = loop().create_task(event.wait());
    auto b = loop().create_task(event.wait());
    co_await sleep(1s);
    a.cancel();
    co_await sleep(1s);
    EXPECT_TRUE(a.cancelled());
    EXPECT_FALSE(b.done());
    event.set();
    co_await b;
  };
  v.run(body());
}

TEST(Semaphore, LimitsConcurrencyAndServesWaitersInArrivalOrder) {
  VirtualLoop v;
  Semaphore semaphore(2);
  int running = 0;
  int most_running = 0;
  std::vector<int> started;
  auto worker = [&](int id) -> Task<void> {
    co_await semaphore.acquire();
    started.push_back(id);
    most_running = std::max(most_running, ++running);
    co_await sleep(1s);
    --running;
    semaphore.release();
  };
  auto body = [&]() -> Task<void> {
    std::vector<Task<void>> workers;
    for (int i = 0; i < 6; ++i) workers.push_back(worker(i));
    co_await gather(std::move(workers));
  };
  v.run(body());
  EXPECT_EQ(most_running, 2);
  EXPECT_EQ(started, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(v.elapsed(), 3s);
  EXPECT_EQ(semaphore.available(), 2u);
}

TEST(Semaphore, AWaiterCancelledAfterBeingGrantedAPermitGivesItBack) {
  VirtualLoop v;
  Semaphore semaphore(1);
  auto body = [&]() -> Task<void> {
    co_await semaphore.acquire();
    auto waiter = loop().create_task(semaphore.acquire());
    co_await sleep(1s);
    semaphore.release();  // Handed to the waiter...
    waiter.cancel();      // ...which is cancelled before it runs.
    co_await sleep(0s);
    co_await sleep(0s);
    EXPECT_TRUE(waiter.cancelled());
    EXPECT_EQ(semaphore.available(), 1u);
    EXPECT_TRUE(semaphore.try_acquire());
  };
  v.run(body());
}

TEST(Queue, PutWaitsWhileFullAndGetWaitsWhileEmpty) {
  VirtualLoop v;
  Queue<int> queue(2);
  std::vector<std::string> log;
  auto producer = [&]() -> Task<void> {
    for (int i = 0; i < 4; ++i) {
      co_await queue.put(i);
      log.push_back("put " + std::to_string(i));
    }
  };
  auto consumer = [&]() -> Task<void> {
    for (int i = 0; i < 4; ++i) {
      co_await sleep(1s);
      int item = co_await queue.get();
      log.push_back("got " + std::to_string(item));
    }
  };
  auto body = [&]() -> Task<void> { co_await gather(producer(), consumer()); };
  v.run(body());
  EXPECT_EQ(log, (std::vector<std::string>{"put 0", "put 1", "got 0", "put 2", "got 1", "put 3",
                                           "got 2", "got 3"}));
  EXPECT_EQ(v.elapsed(), 4s);
}

TEST(Queue, NowaitVariantsRaiseWhenFullOrEmpty) {
  Queue<std::string> queue(1);
  EXPECT_THROW(queue.get_nowait(), QueueEmpty);
  queue.put_nowait("a");
  EXPECT_THROW(queue.put_nowait("b"), QueueFull);
  EXPECT_EQ(queue.get_nowait(), "a");
}

TEST(Queue, ACancelledGetTakesNothing) {
  VirtualLoop v;
  Queue<int> queue;
  auto body = [&]() -> Task<void> {
    auto getter = loop().create_task(queue.get());
    co_await sleep(1s);
    getter.cancel();
    co_await sleep(0s);
    queue.put_nowait(5);
    EXPECT_TRUE(getter.cancelled());
    EXPECT_EQ(queue.size(), 1u);
    EXPECT_EQ(co_await queue.get(), 5);
  };
  v.run(body());
}

}  // namespace
}  // namespace taskwire
