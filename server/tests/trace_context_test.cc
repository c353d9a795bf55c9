#include "server/trace_context.h"

#include <gtest/gtest.h>

namespace taskwire::server {
namespace {

TEST(ParseTraceparent, GivesTheTraceIdOfAWellFormedHeader) {
  EXPECT_EQ(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
  // A later version may carry more fields after the flags.
  EXPECT_EQ(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST(ParseTraceparent, IgnoresAnythingMalformed) {
  for (const char* bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",      // No flags.
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // Upper case.
           "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",    // Short trace id.
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // Zero trace id.
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // Zero parent id.
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // Version ff.
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // v00 with more.
           "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",   // Separators.
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",   // Not hex.
       }) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(parse_traceparent(bad), std::nullopt);
  }
}

}  // namespace
}  // namespace taskwire::server
