#include "core/detail/task_state.h"

#include "core/event_loop.h"

namespace taskwire::detail {
namespace {

thread_local TaskStateBase* t_current_task = nullptr;

}  // namespace

TaskStateBase* current_task() noexcept { return t_current_task; }

TaskStateBase& require_current_task() {
  if (t_current_task == nullptr) {
    throw InvalidStateError(
        "awaited outside a task: run coroutines with EventLoop::run or create_task");
  }
  return *t_current_task;
}

// A task's state is allocated per task, pending or not (a server's pending
// tasks, a client's awaited remote tasks): it must stay this small.
static_assert(sizeof(TaskStateBase) == 64);
// As is a combinator's link per child.
static_assert(sizeof(CompletionLink) == 24);

void on_root_body_done(TaskStateBase& root) noexcept { root.on_body_done(); }

TaskStateBase::TaskStateBase() noexcept : loop_(nullptr) {}

const std::string& TaskStateBase::name() const noexcept {
  static const std::string kUnnamed;
  return extras_ ? extras_->name : kUnnamed;
}

TaskStateBase::Extras& TaskStateBase::extras() {
  if (!extras_) extras_ = std::make_unique<Extras>();
  return *extras_;
}

bool TaskStateBase::cancel() {
  if (done()) return false;
  on_cancel_requested();
  return true;
}

void TaskStateBase::on_cancel_requested() {
  Resumption* resumption = this->resumption();
  if (resumption != nullptr && resumption->suspension != nullptr) {
    resumption->suspension->cancel();
  } else {
    must_cancel_ = true;
  }
}

void TaskStateBase::register_without_body(EventLoop& loop) {
  started_ = true;
  loop.register_task(*this);
}

std::exception_ptr TaskStateBase::exception() {
  switch (status_) {
    case TaskStatus::kPending:
      throw InvalidStateError("task '" + name() + "' has not finished");
    case TaskStatus::kCancelled:
      throw CancelledError();
    default:
      exception_retrieved_ = true;
      return extras_ ? extras_->exception : nullptr;
  }
}

void TaskStateBase::rethrow_if_unsuccessful() {
  if (status_ == TaskStatus::kSucceeded) return;
  if (std::exception_ptr e = exception()) std::rethrow_exception(e);
}

void TaskStateBase::suspend(std::coroutine_handle<> resume_point, Suspension* suspension) {
  Resumption& resumption = *this->resumption();
  resumption.point = resume_point;
  resumption.suspension = suspension;
  if (must_cancel_) {
    must_cancel_ = false;
    suspension->cancel();
  }
}

void TaskStateBase::wake() {
  resumption()->suspension = nullptr;
  loop_->schedule(this);
}

void TaskStateBase::run() {
  TaskStateBase* previous = std::exchange(t_current_task, this);
  if (!started_) {
    started_ = true;
    if (take_cancel_request()) {  // Cancelled before its first step: never runs.
      t_current_task = previous;
      destroy_body();
      finish(std::make_exception_ptr(CancelledError()));
      return;
    }
  }
  resumption()->point.resume();
  t_current_task = previous;
}

void TaskStateBase::finish(std::exception_ptr error) noexcept {
  if (!error) {
    // asyncio: a task asked to cancel that returns before seeing it is
    // still cancelled.
    complete(take_cancel_request() ? TaskStatus::kCancelled : TaskStatus::kSucceeded, nullptr);
  } else if (holds<CancelledError>(error)) {
    complete(TaskStatus::kCancelled, nullptr);
  } else {
    complete(TaskStatus::kFailed, std::move(error));
  }
}

void TaskStateBase::complete(TaskStatus status, std::exception_ptr error) noexcept {
  status_ = status;
  if (status == TaskStatus::kFailed) extras().exception = std::move(error);
  loop_->on_task_finished();
  add_ref();  // Waiters may drop the last handle.
  while (CompletionLink* waiter = waiters_.pop_front())
    waiter->target().on_link_done(*this, *waiter);
  release();
  release();  // The loop's reference.
}

void TaskStateBase::abandon() noexcept {
  if (done()) return;
  status_ = TaskStatus::kCancelled;
  destroy_body();
  loop_->on_task_finished();
  while (CompletionLink* waiter = waiters_.pop_front()) waiter->target().on_link_abandoned(*waiter);
  release();
}

void TaskStateBase::release() noexcept {
  if (--refs_ != 0) return;
  if (has_unretrieved_failure()) loop_->report_unretrieved_failure(*this);
  delete this;
}

}  // namespace taskwire::detail
