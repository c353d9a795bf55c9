#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace taskwire::server {

// A task id: a ULID, 48 bits of Unix time in milliseconds then 80 bits that
// make it unique, written as 26 characters of Crockford base32. Ids sort in
// creation order both as numbers and as text.
struct TaskId {
  std::uint64_t high = 0;  // Time (48 bits) and the top 16 unique bits.
  std::uint64_t low = 0;

  std::string to_string() const;
  // Accepts exactly 26 base32 characters (either case; I, L, O read as 1,
  // 1, 0 as Crockford allows) whose value fits in 128 bits.
  static std::optional<TaskId> parse(std::string_view text);
  std::int64_t unix_millis() const { return static_cast<std::int64_t>(high >> 16); }

  friend auto operator<=>(const TaskId&, const TaskId&) = default;
};

struct TaskIdHash {
  std::size_t operator()(const TaskId& id) const noexcept {
    return id.high * 0x9E3779B97F4A7C15ull ^ id.low;
  }
};

// Makes ids that increase strictly, even within one millisecond and even if
// the clock steps back.
class TaskIdGenerator {
 public:
  explicit TaskIdGenerator(std::uint64_t seed = std::random_device{}()) : random_(seed) {}
  TaskId next(std::int64_t unix_millis);
  // Makes every later id greater than `id` (one made by an earlier process,
  // whose clock may have been ahead of ours).
  void continue_after(const TaskId& id) {
    if (last_ < id) last_ = id;
  }

 private:
  std::mt19937_64 random_;
  TaskId last_;
};

}  // namespace taskwire::server
