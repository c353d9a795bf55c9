#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "core/detail/task_state.h"

namespace taskwire::detail {

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
class ChildWatchSet {
 public:
  ChildWatchSet(const std::vector<TaskStateBase*>& children, ChildObserver& observer)
      : nodes_(std::make_unique<Node[]>(children.size())) {
    for (std::size_t i = 0; i < children.size(); ++i) {
      nodes_[i].observer = &observer;
      nodes_[i].index = i;
      if (!children[i]->done()) children[i]->add_waiter(&nodes_[i]);
    }
  }

 private:
  struct Node final : CompletionWaiter {
    ChildObserver* observer = nullptr;
    std::size_t index = 0;
    void on_task_done(TaskStateBase&) override { observer->on_child_done(index); }
  };

  std::unique_ptr<Node[]> nodes_;
};

}  // namespace taskwire::detail
