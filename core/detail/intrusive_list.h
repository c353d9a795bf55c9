#pragma once

#include <cstddef>

namespace taskwire::detail {

// A node that lives inside the object it links (an awaiter in a coroutine
// frame, a task), so that linking and unlinking never allocate.
class ListNode {
 public:
  ListNode() = default;
  ListNode(const ListNode&) = delete;
  ListNode& operator=(const ListNode&) = delete;
  ~ListNode() { unlink(); }

  bool linked() const noexcept { return next_ != nullptr; }
  void unlink() noexcept {
    if (!linked()) return;
    prev_->next_ = next_;
    next_->prev_ = prev_;
    prev_ = next_ = nullptr;
  }

 private:
  friend class IntrusiveListBase;
  ListNode* prev_ = nullptr;
  ListNode* next_ = nullptr;
};

class IntrusiveListBase {
 public:
  IntrusiveListBase() noexcept { head_.prev_ = head_.next_ = &head_; }
  IntrusiveListBase(const IntrusiveListBase&) = delete;
  IntrusiveListBase& operator=(const IntrusiveListBase&) = delete;
  ~IntrusiveListBase() {
    while (!empty()) pop_front_node();
    head_.prev_ = head_.next_ = nullptr;
  }

  bool empty() const noexcept { return head_.next_ == &head_; }

 protected:
  void push_back_node(ListNode* node) noexcept {
    node->prev_ = head_.prev_;
    node->next_ = &head_;
    head_.prev_->next_ = node;
    head_.prev_ = node;
  }
  ListNode* front_node() const noexcept { return empty() ? nullptr : head_.next_; }
  ListNode* pop_front_node() noexcept {
    ListNode* node = front_node();
    if (node) node->unlink();
    return node;
  }
  ListNode* next_node(ListNode* node) const noexcept {
    return node->next_ == &head_ ? nullptr : node->next_;
  }

 private:
  ListNode head_;
};

// A FIFO of T, where T derives from ListNode. The list does not own its
// elements; an element unlinks itself when destroyed.
template <typename T>
class IntrusiveList : public IntrusiveListBase {
 public:
  void push_back(T* item) noexcept { push_back_node(item); }
  T* front() const noexcept { return static_cast<T*>(front_node()); }
  T* pop_front() noexcept { return static_cast<T*>(pop_front_node()); }
  T* next(T* item) const noexcept { return static_cast<T*>(next_node(item)); }
};

}  // namespace taskwire::detail
