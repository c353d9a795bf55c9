#include "core/task_group.h"

namespace taskwire {

// Holds a reference to one member task and hears when it finishes.
class TaskGroup::Member final : public detail::CompletionWaiter {
 public:
  Member(TaskGroup& group, detail::TaskStateBase* task) : group_(group), task_(task) {
    task_->add_ref();
    if (!task_->done()) task_->add_waiter(this);
  }
  ~Member() {
    unlink();
    task_->release();
  }
  detail::TaskStateBase& task() const noexcept { return *task_; }
  void on_task_done(detail::TaskStateBase& task) override { group_.on_member_done(task); }

 private:
  TaskGroup& group_;
  detail::TaskStateBase* task_;
};

// Waits for the group's members; cancelling it cancels them all.
class TaskGroup::JoinAwaiter final : private detail::Suspension {
 public:
  explicit JoinAwaiter(TaskGroup& group) : group_(group) {}

  bool await_ready() const noexcept { return group_.running_ == 0; }
  void await_suspend(std::coroutine_handle<> resume_point) {
    waiting_ = &detail::require_current_task();
    group_.joiner_ = this;
    waiting_->suspend(resume_point, this);
  }
  void await_resume() {
    if (waiting_ != nullptr && waiting_->take_cancel_request()) cancelled_ = true;
  }
  bool cancelled() const noexcept { return cancelled_; }
  void on_all_done() {
    group_.joiner_ = nullptr;
    waiting_->wake();
  }

 private:
  void cancel() override {
    cancelled_ = true;
    group_.cancel_members();
  }

  TaskGroup& group_;
  detail::TaskStateBase* waiting_ = nullptr;
  bool cancelled_ = false;
};

TaskGroup::TaskGroup() : loop_(EventLoop::current()), parent_(detail::current_task()) {
  if (loop_ == nullptr || parent_ == nullptr) {
    throw InvalidStateError("a TaskGroup must be used inside a task on a running EventLoop");
  }
}

TaskGroup::~TaskGroup() {
  // Only reached early if the frame holding the group is destroyed without
  // finishing (its loop is going away): nothing may outlive the group.
  if (!finished_) cancel_members();
}

void TaskGroup::check_accepting() const {
  if (finished_) throw InvalidStateError("TaskGroup has finished");
  if (failed()) throw InvalidStateError("TaskGroup is shutting down");
}

void TaskGroup::adopt(detail::TaskStateBase* task) {
  members_.push_back(std::make_unique<Member>(*this, task));
  if (!task->done()) ++running_;
}

void TaskGroup::on_member_done(detail::TaskStateBase& task) {
  --running_;
  if (task.status() == detail::TaskStatus::kFailed) {
    bool first = errors_.empty();
    errors_.push_back(task.exception());
    if (first) {
      cancel_members();
      if (!joining_ && !cancelled_parent_) {
        cancelled_parent_ = true;
        parent_->cancel();
      }
    }
  }
  if (running_ == 0 && joiner_ != nullptr) joiner_->on_all_done();
}

void TaskGroup::cancel_members() {
  for (auto& member : members_) member->task().cancel();
}

Task<void> TaskGroup::join(std::exception_ptr body_error) {
  joining_ = true;
  if (body_error) cancel_members();
  // The body may have finished before our cancellation reached it.
  if (cancelled_parent_) parent_->take_cancel_request();
  JoinAwaiter awaiter(*this);
  co_await awaiter;
  finished_ = true;
  if (cancelled_parent_) parent_->take_cancel_request();
  std::vector<std::exception_ptr> errors;
  bool body_cancelled = false;
  if (body_error) {
    try {
      std::rethrow_exception(body_error);
    } catch (const CancelledError&) {
      body_cancelled = true;
    } catch (...) {
      errors.push_back(body_error);
    }
  }
  errors.insert(errors.end(), errors_.begin(), errors_.end());
  if (!errors.empty()) throw ExceptionGroup(std::move(errors));
  if (body_cancelled || awaiter.cancelled()) throw CancelledError();
}

}  // namespace taskwire
