#include "server/task_id.h"

#include <gtest/gtest.h>

#include <set>

namespace taskwire::server {
namespace {

TEST(TaskId, RoundTripsThroughItsText) {
  TaskIdGenerator generator(1);
  for (int i = 0; i < 1000; ++i) {
    TaskId id = generator.next(1'700'000'000'000 + i);
    auto parsed = TaskId::parse(id.to_string());
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, id);
    EXPECT_EQ(id.unix_millis(), 1'700'000'000'000 + i);
  }
}

TEST(TaskId, IdsIncreaseStrictlyEvenWithinAMillisecondOrWhenTheClockStepsBack) {
  TaskIdGenerator generator(2);
  std::set<std::string> seen;
  std::string last;
  for (int i = 0; i < 10'000; ++i) {
    std::string text = generator.next(i % 3 == 0 ? 1000 : 999).to_string();
    EXPECT_GT(text, last);
    last = text;
  }
}

TEST(TaskId, RejectsWhatIsNotAnId) {
  for (const char* bad :
       {"", "short", "01ARZ3NDEKTSV4RRFFQ69G5FA", "01ARZ3NDEKTSV4RRFFQ69G5FAVX",
        "01ARZ3NDEKTSV4RRFFQ69G5FA!", "81ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAU"}) {
    EXPECT_FALSE(TaskId::parse(bad).has_value()) << bad;
  }
  EXPECT_EQ(TaskId::parse("01arz3ndektsv4rrffq69g5fav"),
            TaskId::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
  // Crockford's aliases: I and L read as 1, O as 0, in either case.
  for (const char* alias : {"OIARZ3NDEKTSV4RRFFQ69G5FAV", "0LARZ3NDEKTSV4RRFFQ69G5FAV",
                            "oiarz3ndektsv4rrffq69g5fav", "0larz3ndektsv4rrffq69g5fav"}) {
    EXPECT_EQ(TaskId::parse(alias), TaskId::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV")) << alias;
  }
}

}  // namespace
}  // namespace taskwire::server
