#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/clock.h"

namespace taskwire::detail {

// A timer that lives inside its owner (a sleep's awaiter, a callback handle)
// and knows its own slot in the heap, so that cancelling removes it at once:
// no allocation to arm, no garbage left behind to cancel.
class TimerNode {
 public:
  TimerNode() = default;
  TimerNode(const TimerNode&) = delete;
  TimerNode& operator=(const TimerNode&) = delete;

  bool armed() const noexcept { return index_ != kNotArmed; }
  TimePoint deadline() const noexcept { return deadline_; }

  // Called by the loop when the deadline has passed, after removal from the
  // heap. Must not block; typically schedules a task or a callback.
  virtual void fire() = 0;
  // The loop is being destroyed with this timer still armed.
  virtual void discard() noexcept {}

 protected:
  ~TimerNode() = default;

 private:
  friend class TimerHeap;
  static constexpr std::uint32_t kNotArmed = std::numeric_limits<std::uint32_t>::max();

  TimePoint deadline_{};
  std::uint64_t sequence_ = 0;  // Orders equal deadlines first-armed first.
  std::uint32_t index_ = kNotArmed;
};

// A binary min-heap of timers ordered by (deadline, arming order). Arming
// with a later deadline than most (the usual case) sifts up zero or one
// levels; removing a random timer sifts a leaf a few levels: both stay flat
// as the heap grows. Deadlines are copied into the heap array so that
// comparisons do not chase pointers.
class TimerHeap {
 public:
  bool empty() const noexcept { return entries_.empty(); }
  std::size_t size() const noexcept { return entries_.size(); }
  TimerNode* top() const noexcept { return entries_.front().node; }

  void arm(TimerNode* node, TimePoint deadline);
  void cancel(TimerNode* node) noexcept;
  TimerNode* pop() noexcept;

 private:
  struct Entry {
    Duration::rep deadline;
    TimerNode* node;
  };

  bool before(const Entry& a, const Entry& b) const noexcept {
    return a.deadline < b.deadline ||
           (a.deadline == b.deadline && a.node->sequence_ < b.node->sequence_);
  }
  void place(std::size_t index, const Entry& entry) noexcept {
    entries_[index] = entry;
    entry.node->index_ = static_cast<std::uint32_t>(index);
  }
  void sift_up(std::size_t index, Entry entry) noexcept;
  void sift_down(std::size_t index, Entry entry) noexcept;
  void remove_at(std::size_t index) noexcept;

  std::vector<Entry> entries_;
  std::uint64_t next_sequence_ = 0;
};

}  // namespace taskwire::detail
