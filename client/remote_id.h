#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace taskwire::client::detail {

// A remote task's id as the client holds it, in 16 bytes plus a tag byte:
// taskwired's ids (26 characters of Crockford base32, 128 bits) packed
// into their 16 bytes, so that 100,000 awaited tasks hold neither 100,000
// allocations nor 26 bytes each; an id in any other form (another server's)
// as text, in place when it is short, else on the heap. Packing only the
// canonical form keeps every id exactly as the server wrote it.
class RemoteId {
 public:
  RemoteId() noexcept = default;
  RemoteId(const RemoteId&) = delete;
  RemoteId& operator=(const RemoteId&) = delete;
  ~RemoteId() { clear(); }

  bool empty() const noexcept { return tag_ == 0; }
  std::string text() const;
  void assign(std::string_view text);

  // Orders ids to find them again (packed ones by their bytes, which is
  // also their text's order, before all others, which go by their text).
  struct Key {
    bool packed;
    std::string_view bytes;
    friend bool operator<(const Key& a, const Key& b) noexcept {
      if (a.packed != b.packed) return a.packed;
      return a.bytes < b.bytes;
    }
  };
  Key key() const noexcept;
  // The key `text` would have, packed into `scratch` if it packs.
  static Key key_of(std::string_view text, char (&scratch)[16]) noexcept;

 private:
  static constexpr std::uint8_t kInline = 16;  // Tags 1-16: text that long.
  static constexpr std::uint8_t kPacked = 0xfe;
  static constexpr std::uint8_t kHeap = 0xff;

  std::string* heap() const noexcept;
  void clear() noexcept;

  char bytes_[16];
  std::uint8_t tag_ = 0;  // 0: no id.
};

}  // namespace taskwire::client::detail
