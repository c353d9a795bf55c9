// The seed's three asyncio programs, on the local loop and virtual time.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/gather.h"
#include "core/sleep.h"
#include "core/tests/test_loop.h"

namespace taskwire {
namespace {

using namespace std::chrono_literals;
using testing::loop;
using testing::VirtualLoop;

class SeedPrograms : public ::testing::Test {
 protected:
  Task<std::string> say_after(Duration delay, std::string what) {
    co_await sleep(delay);
    printed_.push_back(what);
    co_return what;
  }

  VirtualLoop v_;
  std::vector<std::string> printed_;
};

TEST_F(SeedPrograms, OneCoroutineAwaitingASleepOfOneSecond) {
  v_.run(say_after(1s, "hello"));
  EXPECT_EQ(printed_, std::vector<std::string>{"hello"});
  EXPECT_EQ(v_.elapsed(), 1000ms);
}

TEST_F(SeedPrograms, GatherOfTwoAndOneSecondSleepsTakesTwoSecondsNotThree) {
  auto main = [&]() -> Task<void> {
    auto [first, second] = co_await gather(say_after(2s, "task1"), say_after(1s, "task2"));
    EXPECT_EQ(first, "task1");
    EXPECT_EQ(second, "task2");
  };
  v_.run(main());
  EXPECT_EQ(printed_, (std::vector<std::string>{"task2", "task1"}));
  EXPECT_EQ(v_.elapsed(), 2000ms);
}

TEST_F(SeedPrograms, CreateTaskThenAwaitRunsTheTasksConcurrently) {
  auto main = [&]() -> Task<void> {
    auto task1 = loop().create_task(say_after(1s, "hello"));
    auto task2 = loop().create_task(say_after(2s, "world"));
    co_await task1;
    co_await task2;
  };
  v_.run(main());
  EXPECT_EQ(printed_, (std::vector<std::string>{"hello", "world"}));
  EXPECT_EQ(v_.elapsed(), 2000ms);
}

}  // namespace
}  // namespace taskwire
