#pragma once

#include <coroutine>
#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

#include "core/detail/child_watch.h"
#include "core/detail/task_state.h"

namespace taskwire::detail {

enum class GatherMode {
  kStopOnFailure,  // gather: the first failure or cancellation ends the wait.
  kCollectAll,     // gather_outcomes: wait for every child whatever it does.
};

// Waits for a gather's children. Cancelling the waiting task cancels every
// unfinished child and, once all have finished, raises CancelledError.
// Returns the child whose failure ended the wait early, or null.
//
// `Children` is a vector of states or of handles (see state_of), held or,
// as a const reference, borrowed: gather's vector of handles, which outlives
// the wait, is read in place rather than copied (8 bytes a child).
template <typename Children>
class GatherAwaiter final : private ChildObserver, private Suspension {
 public:
  GatherAwaiter(Children children, GatherMode mode)
      : children_(std::forward<Children>(children)), mode_(mode) {}

  bool await_ready() {
    remaining_ = 0;
    for (const auto& entry : children_) {
      TaskStateBase* child = state_of(entry);
      if (!child->done()) {
        ++remaining_;
      } else if (first_failure_ == nullptr && ends_early(*child)) {
        first_failure_ = child;
      }
    }
    return remaining_ == 0 || first_failure_ != nullptr;
  }
  void await_suspend(std::coroutine_handle<> resume_point) {
    waiting_ = &require_current_task();
    watch_.emplace(children_, static_cast<ChildObserver&>(*this));
    waiting_->suspend(resume_point, this);
  }
  TaskStateBase* await_resume() {
    if (cancel_requested_) throw CancelledError();
    if (waiting_ != nullptr && waiting_->take_cancel_request()) throw CancelledError();
    return first_failure_;
  }

 private:
  bool ends_early(const TaskStateBase& child) const {
    return mode_ == GatherMode::kStopOnFailure && child.status() != TaskStatus::kSucceeded;
  }
  void on_child_done(std::size_t index) override {
    --remaining_;
    if (resumed_) return;
    TaskStateBase* child = state_of(children_[index]);
    if (!cancel_requested_ && ends_early(*child)) {
      first_failure_ = child;
      resume();
    } else if (remaining_ == 0) {
      resume();
    }
  }
  void cancel() override {
    cancel_requested_ = true;
    for (const auto& child : children_) state_of(child)->cancel();
  }
  void resume() {
    resumed_ = true;
    waiting_->wake();
  }

  Children children_;
  GatherMode mode_;
  std::optional<ChildWatchSet> watch_;
  TaskStateBase* waiting_ = nullptr;
  TaskStateBase* first_failure_ = nullptr;
  std::size_t remaining_ = 0;
  bool cancel_requested_ = false;
  bool resumed_ = false;
};

}  // namespace taskwire::detail
