#include "server/task_id.h"

#include <array>
#include <cstdint>

namespace taskwire::server {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

// Each byte's digit value in Crockford base32 (either case; I and L read
// as 1, O as 0), -1 for any other byte. A table: a client following 10,000
// tasks sends their 10,000 ids, and a search of the alphabet for each
// character was a twentieth of the loop's time while 100,000 were created
// and followed.
constexpr auto kDigitValues = [] {
  std::array<std::int8_t, 256> values{};
  values.fill(-1);
  for (int i = 0; i < 32; ++i) {
    const char upper = kAlphabet[i];
    values[static_cast<unsigned char>(upper)] = static_cast<std::int8_t>(i);
    if (upper >= 'A' && upper <= 'Z')
      values[static_cast<unsigned char>(upper - 'A' + 'a')] = static_cast<std::int8_t>(i);
  }
  for (char one : {'I', 'i', 'L', 'l'}) values[static_cast<unsigned char>(one)] = 1;
  for (char zero : {'O', 'o'}) values[static_cast<unsigned char>(zero)] = 0;
  return values;
}();

int decode(char c) { return kDigitValues[static_cast<unsigned char>(c)]; }

}  // namespace

std::string TaskId::to_string() const {
  // 26 digits of 5 bits = 130 bits: the first digit carries the top 3.
  std::string text(26, '0');
  std::uint64_t hi = high, lo = low;
  for (int i = 25; i >= 0; --i) {
    text[i] = kAlphabet[lo & 31];
    lo = (lo >> 5) | (hi << 59);
    hi >>= 5;
  }
  return text;
}

std::optional<TaskId> TaskId::parse(std::string_view text) {
  if (text.size() != 26) return std::nullopt;
  TaskId id;
  for (std::size_t i = 0; i < text.size(); ++i) {
    int digit = decode(text[i]);
    if (digit < 0) return std::nullopt;
    if (i == 0 && digit > 7) return std::nullopt;  // Would overflow 128 bits.
    id.high = (id.high << 5) | (id.low >> 59);
    id.low = (id.low << 5) | static_cast<std::uint64_t>(digit);
  }
  return id;
}

TaskId TaskIdGenerator::next(std::int64_t unix_millis) {
  auto millis = static_cast<std::uint64_t>(unix_millis < 0 ? 0 : unix_millis) & 0xFFFF'FFFF'FFFFull;
  TaskId id;
  if (static_cast<std::int64_t>(millis) <= last_.unix_millis() &&
      (last_.high != 0 || last_.low != 0)) {
    // Same (or an earlier) millisecond: count up from the last id.
    id = last_;
    if (++id.low == 0) ++id.high;
  } else {
    id.high = (millis << 16) | (random_() & 0xFFFF);
    id.low = random_();
  }
  last_ = id;
  return id;
}

}  // namespace taskwire::server
