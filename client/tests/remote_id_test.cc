#include "client/remote_id.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace taskwire::client::detail {
namespace {

std::string round_trip(const std::string& text) {
  RemoteId id;
  id.assign(text);
  return id.text();
}

bool same_key(const RemoteId::Key& a, const RemoteId::Key& b) { return !(a < b) && !(b < a); }

TEST(RemoteIdTest, GivesBackEveryIdExactlyAsAssigned) {
  for (std::string text : {
           "01KAY3ZQ0000000000000000A7",  // taskwired's form: packed.
           "7ZZZZZZZZZZZZZZZZZZZZZZZZZ",  // The largest that packs.
           "00000000000000000000000000",
           "01kay3zq0000000000000000a7",  // Lower case: kept as text.
           "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",  // Over 128 bits: kept as text.
           "01KAY3ZQ0000000000000000AU",  // 'U' is no digit: kept as text.
           "short-id",
           "sixteen-chars-id",
           "a-longer-id-from-another-server-kept-on-the-heap",
       }) {
    EXPECT_EQ(round_trip(text), text);
  }
}

TEST(RemoteIdTest, AnEmptyIdIsNoId) {
  RemoteId id;
  EXPECT_TRUE(id.empty());
  id.assign("");
  EXPECT_TRUE(id.empty());
  id.assign("x");
  EXPECT_FALSE(id.empty());
}

TEST(RemoteIdTest, AssigningAgainReplacesTheId) {
  RemoteId id;
  id.assign("a-longer-id-from-another-server-kept-on-the-heap");
  id.assign("01KAY3ZQ0000000000000000A7");
  EXPECT_EQ(id.text(), "01KAY3ZQ0000000000000000A7");
  id.assign("short");
  EXPECT_EQ(id.text(), "short");
}

TEST(RemoteIdTest, TheKeyOfTextFindsTheIdAssignedIt) {
  std::vector<std::string> texts = {"01KAY3ZQ0000000000000000A7", "01KAY3ZQ0000000000000000A8",
                                    "01kay3zq0000000000000000a7", "short",
                                    "a-longer-id-from-another-server-kept-on-the-heap"};
  for (const std::string& text : texts) {
    RemoteId id;
    id.assign(text);
    char scratch[16];
    EXPECT_TRUE(same_key(id.key(), RemoteId::key_of(text, scratch))) << text;
    for (const std::string& other : texts) {
      if (other == text) continue;
      char other_scratch[16];
      EXPECT_FALSE(same_key(id.key(), RemoteId::key_of(other, other_scratch)))
          << text << " vs " << other;
    }
  }
}

TEST(RemoteIdTest, PackedIdsSortAsTheirText) {
  std::vector<std::string> texts = {"01KAY3ZQ0000000000000000A7", "01KAY3ZQ0000000000000000Z0",
                                    "01KAY3ZP0000000000000000ZZ", "00000000000000000000000001",
                                    "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"};
  std::vector<std::string> by_key = texts;
  std::sort(by_key.begin(), by_key.end(), [](const std::string& a, const std::string& b) {
    char sa[16], sb[16];
    return RemoteId::key_of(a, sa) < RemoteId::key_of(b, sb);
  });
  std::sort(texts.begin(), texts.end());
  EXPECT_EQ(by_key, texts);
}

}  // namespace
}  // namespace taskwire::client::detail
