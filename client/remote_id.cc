#include "client/remote_id.h"

#include <array>
#include <cstdint>
#include <cstring>

namespace taskwire::client::detail {
namespace {

constexpr char kDigits[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr std::size_t kTextSize = 26;

// Each byte's digit value, -1 for a byte that is not a canonical digit. A
// table, since every id the client is sent is packed or looked up (twice
// per task of a gather of 100,000): a search of the 32 digits for each
// character was an eighth of the client's loop thread there.
constexpr auto kDigitValues = [] {
  std::array<std::int8_t, 256> values{};
  values.fill(-1);
  for (int i = 0; i < 32; ++i)
    values[static_cast<unsigned char>(kDigits[i])] = static_cast<std::int8_t>(i);
  return values;
}();

int digit_value(char c) noexcept { return kDigitValues[static_cast<unsigned char>(c)]; }

// Big-endian, so that the bytes sort as the text does.
bool pack(std::string_view text, char (&out)[16]) noexcept {
  if (text.size() != kTextSize) return false;
  std::uint64_t high = 0, low = 0;
  for (std::size_t i = 0; i < kTextSize; ++i) {
    int digit = digit_value(text[i]);
    if (digit < 0 || (i == 0 && digit > 7)) return false;  // Not canonical, or over 128 bits.
    high = (high << 5) | (low >> 59);
    low = (low << 5) | static_cast<std::uint64_t>(digit);
  }
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>(high >> (56 - 8 * i));
    out[8 + i] = static_cast<char>(low >> (56 - 8 * i));
  }
  return true;
}

std::string unpack(const char (&bytes)[16]) {
  std::uint64_t high = 0, low = 0;
  for (int i = 0; i < 8; ++i) {
    high = (high << 8) | static_cast<unsigned char>(bytes[i]);
    low = (low << 8) | static_cast<unsigned char>(bytes[8 + i]);
  }
  std::string text(kTextSize, '0');
  for (int i = static_cast<int>(kTextSize) - 1; i >= 0; --i) {
    text[static_cast<std::size_t>(i)] = kDigits[low & 31];
    low = (low >> 5) | (high << 59);
    high >>= 5;
  }
  return text;
}

}  // namespace

std::string RemoteId::text() const {
  if (tag_ == kPacked) return unpack(bytes_);
  if (tag_ == kHeap) return *heap();
  return std::string(bytes_, tag_);
}

void RemoteId::assign(std::string_view text) {
  clear();
  if (pack(text, bytes_)) {
    tag_ = kPacked;
  } else if (text.size() <= kInline) {
    std::memcpy(bytes_, text.data(), text.size());
    tag_ = static_cast<std::uint8_t>(text.size());
  } else {
    auto* heap_text = new std::string(text);
    std::memcpy(bytes_, &heap_text, sizeof heap_text);
    tag_ = kHeap;
  }
}

RemoteId::Key RemoteId::key() const noexcept {
  if (tag_ == kPacked) return {true, {bytes_, sizeof bytes_}};
  if (tag_ == kHeap) return {false, *heap()};
  return {false, {bytes_, tag_}};
}

RemoteId::Key RemoteId::key_of(std::string_view text, char (&scratch)[16]) noexcept {
  if (pack(text, scratch)) return {true, {scratch, sizeof scratch}};
  return {false, text};
}

std::string* RemoteId::heap() const noexcept {
  std::string* text;
  std::memcpy(&text, bytes_, sizeof text);
  return text;
}

void RemoteId::clear() noexcept {
  if (tag_ == kHeap) delete heap();
  tag_ = 0;
}

}  // namespace taskwire::client::detail
