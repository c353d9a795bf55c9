#pragma once

#include <bit>
#include <cstddef>
#include <memory>

namespace taskwire::detail {

// Something the loop can run once: a task's next step or a callback.
class Runnable {
 public:
  virtual void run() = 0;
  // The loop is being destroyed with this still queued.
  virtual void discard() noexcept {}

 protected:
  ~Runnable() = default;
};

// A growable ring buffer of Runnable pointers: the loop's ready queue.
// Push and pop are a store, a load and a mask; it never shrinks, so a loop
// that once had a burst of work keeps the buffer for the next one.
class ReadyQueue {
 public:
  bool empty() const noexcept { return head_ == tail_; }
  std::size_t size() const noexcept { return tail_ - head_; }

  void push(Runnable* item) {
    if (size() == capacity_) grow();
    slots_[tail_++ & (capacity_ - 1)] = item;
  }
  Runnable* pop() noexcept { return slots_[head_++ & (capacity_ - 1)]; }

 private:
  void grow() {
    std::size_t capacity = capacity_ == 0 ? 256 : capacity_ * 2;
    auto slots = std::make_unique<Runnable*[]>(capacity);
    std::size_t n = size();
    for (std::size_t i = 0; i < n; ++i) slots[i] = slots_[(head_ + i) & (capacity_ - 1)];
    slots_ = std::move(slots);
    capacity_ = capacity;
    head_ = 0;
    tail_ = n;
  }

  std::unique_ptr<Runnable*[]> slots_;
  std::size_t capacity_ = 0;
  std::size_t head_ = 0;  // Both only grow; masking maps them to slots.
  std::size_t tail_ = 0;
};

}  // namespace taskwire::detail
