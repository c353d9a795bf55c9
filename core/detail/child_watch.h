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

// One completion link per child task, all reporting to one observer by
// index. The links unlink themselves when the set is destroyed, so a
// combinator that returns early leaves nothing behind in its children.
//
// A link is 24 bytes (a gather of 100,000 tasks holds 100,000 of them): the
// set is the target of them all, and finds a link's index from its place in
// the array.
class ChildWatchSet final : private CompletionTarget {
 public:
  // `children`: a vector of states or of handles (see state_of).
  template <typename Children>
  ChildWatchSet(const Children& children, ChildObserver& observer)
      : links_(std::make_unique<CompletionLink[]>(children.size())), observer_(observer) {
    for (std::size_t i = 0; i < children.size(); ++i) {
      links_[i].set_target(this);
      TaskStateBase* child = state_of(children[i]);
      if (!child->done()) child->add_waiter(&links_[i]);
    }
  }
  ChildWatchSet(const ChildWatchSet&) = delete;
  ChildWatchSet& operator=(const ChildWatchSet&) = delete;
  ~ChildWatchSet() = default;

 private:
  void on_link_done(TaskStateBase&, CompletionLink& link) override {
    observer_.on_child_done(static_cast<std::size_t>(&link - links_.get()));
  }

  std::unique_ptr<CompletionLink[]> links_;
  ChildObserver& observer_;
};

}  // namespace taskwire::detail
