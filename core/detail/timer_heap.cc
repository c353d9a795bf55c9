#include "core/detail/timer_heap.h"

namespace taskwire::detail {

void TimerHeap::arm(TimerNode* node, TimePoint deadline) {
  if (node->armed()) cancel(node);
  node->deadline_ = deadline;
  node->sequence_ = next_sequence_++;
  entries_.push_back({});
  sift_up(entries_.size() - 1, Entry{deadline.time_since_epoch().count(), node});
}

void TimerHeap::cancel(TimerNode* node) noexcept {
  if (!node->armed()) return;
  remove_at(node->index_);
}

TimerNode* TimerHeap::pop() noexcept {
  TimerNode* node = entries_.front().node;
  remove_at(0);
  return node;
}

void TimerHeap::remove_at(std::size_t index) noexcept {
  entries_[index].node->index_ = TimerNode::kNotArmed;
  Entry last = entries_.back();
  entries_.pop_back();
  if (index == entries_.size()) return;
  if (index > 0 && before(last, entries_[(index - 1) / 2])) {
    sift_up(index, last);
  } else {
    sift_down(index, last);
  }
}

void TimerHeap::sift_up(std::size_t index, Entry entry) noexcept {
  while (index > 0) {
    std::size_t parent = (index - 1) / 2;
    if (!before(entry, entries_[parent])) break;
    place(index, entries_[parent]);
    index = parent;
  }
  place(index, entry);
}

void TimerHeap::sift_down(std::size_t index, Entry entry) noexcept {
  const std::size_t n = entries_.size();
  for (;;) {
    std::size_t child = 2 * index + 1;
    if (child >= n) break;
    if (child + 1 < n && before(entries_[child + 1], entries_[child])) ++child;
    if (!before(entries_[child], entry)) break;
    place(index, entries_[child]);
    index = child;
  }
  place(index, entry);
}

}  // namespace taskwire::detail
