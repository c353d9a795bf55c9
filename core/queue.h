#pragma once

#include <cstddef>
#include <deque>
#include <limits>
#include <stdexcept>
#include <utility>

#include "core/detail/wait_list.h"
#include "core/task.h"

namespace taskwire {

class QueueFull : public std::runtime_error {
 public:
  QueueFull() : std::runtime_error("queue is full") {}
};

class QueueEmpty : public std::runtime_error {
 public:
  QueueEmpty() : std::runtime_error("queue is empty") {}
};

// asyncio.Queue: a FIFO with an optional bound. put() waits while the queue
// is full, get() while it is empty; waiters are served in arrival order.
// A cancelled get() takes nothing; a cancelled put() adds nothing.
// Loop-thread only.
template <typename T>
class Queue {
 public:
  explicit Queue(std::size_t max_size = 0) : max_size_(max_size) {}
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  std::size_t size() const noexcept { return items_.size(); }
  bool empty() const noexcept { return items_.empty(); }
  bool full() const noexcept { return max_size_ != 0 && items_.size() >= max_size_; }
  std::size_t max_size() const noexcept { return max_size_; }

  void put_nowait(T item) {
    if (full()) throw QueueFull();
    items_.push_back(std::move(item));
    getters_.notify_one();
  }
  T get_nowait() {
    if (empty()) throw QueueEmpty();
    T item = std::move(items_.front());
    items_.pop_front();
    putters_.notify_one();
    return item;
  }

  Task<void> put(T item) {
    while (full()) co_await putters_.wait();
    put_nowait(std::move(item));
  }
  Task<T> get() {
    while (empty()) co_await getters_.wait();
    co_return get_nowait();
  }

 private:
  std::size_t max_size_;
  std::deque<T> items_;
  detail::WaitList getters_;
  detail::WaitList putters_;
};

}  // namespace taskwire
