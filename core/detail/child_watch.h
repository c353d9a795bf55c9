#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "core/detail/task_state.h"
#include "core/task_handle.h"

namespace taskwire::detail {

// A combinator's child, given as its state or a handle to it.
inline TaskStateBase* state_of(TaskStateBase* child) noexcept { return child; }
template <typename T>
TaskStateBase* state_of(const TaskHandle<T>& child) noexcept {
  return child.state();
}

// Told which child of a combinator (gather, wait, as_completed) finished.
class ChildObserver {
 public:
  virtual void on_child_done(std::size_t index) = 0;

 protected:
  ~ChildObserver() = default;
};

// One completion waiter per child task, all reporting to one observer by
// index. The waiters unlink themselves when the set is destroyed, so a
// combinator that returns early leaves nothing behind in its children.
//
// A node is 32 bytes (a gather of 100,000 tasks holds 100,000 of them): it
// finds its index from its place in the array rather than storing it.
class ChildWatchSet {
 public:
  // `children`: a vector of states or of handles (see state_of).
  template <typename Children>
  ChildWatchSet(const Children& children, ChildObserver& observer)
      : nodes_(std::make_unique<Node[]>(children.size())), observer_(observer) {
    for (std::size_t i = 0; i < children.size(); ++i) {
      nodes_[i].set = this;
      TaskStateBase* child = state_of(children[i]);
      if (!child->done()) child->add_waiter(&nodes_[i]);
    }
  }
  ChildWatchSet(const ChildWatchSet&) = delete;
  ChildWatchSet& operator=(const ChildWatchSet&) = delete;

 private:
  struct Node final : CompletionWaiter {
    ChildWatchSet* set = nullptr;
    void on_task_done(TaskStateBase&) override {
      set->observer_.on_child_done(static_cast<std::size_t>(this - set->nodes_.get()));
    }
  };

  std::unique_ptr<Node[]> nodes_;
  ChildObserver& observer_;
};

}  // namespace taskwire::detail
