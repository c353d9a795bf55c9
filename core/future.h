#pragma once

#include <exception>
#include <type_traits>
#include <utility>

#include "core/detail/task_state.h"
#include "core/errors.h"
#include "core/event_loop.h"
#include "core/task_handle.h"

// Future: asyncio.Future. A task's state with no coroutine behind it: its
// outcome is set from outside (a callback, a reply from another process),
// and a TaskHandle to it is awaited and combined (gather, wait, wait_for,
// as_completed, TaskGroup) like any task's.
//
// The first set_result / set_exception / set_cancelled wins; the later ones
// return false and change nothing. Cancelling a pending future (through a
// handle, or a combinator that cancels its children) makes it cancelled at
// once, as asyncio's does, unless a FutureState subclass says otherwise:
// a future that stands for work elsewhere may pass the request on and
// finish when that work has stopped.
//
// A pending future counts as a pending task of its loop: EventLoop::run
// cancels it at shutdown, and a destroyed loop abandons it (cancelled). It
// costs one allocation, the size of detail::FutureState<T>.
namespace taskwire {
namespace detail {

template <typename T>
class FutureState : public TaskStateResult<T> {
 public:
  explicit FutureState(EventLoop& loop) { this->register_without_body(loop); }

  template <typename U = T>
  requires(!std::is_void_v<T>) bool set_result(U&& value) {
    if (this->done()) return false;
    this->store(T(std::forward<U>(value)));
    this->complete(TaskStatus::kSucceeded, nullptr);
    return true;
  }
  template <typename U = T>
  requires std::is_void_v<T>
  bool set_result() {
    if (this->done()) return false;
    this->complete(TaskStatus::kSucceeded, nullptr);
    return true;
  }
  // `error` must not be null; a CancelledError counts as cancellation.
  bool set_exception(std::exception_ptr error) {
    if (this->done()) return false;
    this->finish(std::move(error));
    return true;
  }
  bool set_cancelled() {
    if (this->done()) return false;
    this->complete(TaskStatus::kCancelled, nullptr);
    return true;
  }

 protected:
  // Called by cancel() while pending: asyncio.Future cancels at once.
  void on_cancel_requested() override { set_cancelled(); }

 private:
  void destroy_body() noexcept override {}
  void on_body_done() noexcept override {}
};

}  // namespace detail

// Owns the right to complete a future; handle() is what others await.
template <typename T>
class Future {
 public:
  explicit Future(EventLoop& loop)
      : handle_(new detail::FutureState<T>(loop)) {}  // The loop holds a reference until done.

  const TaskHandle<T>& handle() const noexcept { return handle_; }
  bool done() const noexcept { return handle_.done(); }

  template <typename U = T>
  requires(!std::is_void_v<T>) bool set_result(U&& value) const {
    return state()->set_result(std::forward<U>(value));
  }
  template <typename U = T>
  requires std::is_void_v<T>
  bool set_result() const { return state()->set_result(); }
  bool set_exception(std::exception_ptr error) const {
    return state()->set_exception(std::move(error));
  }
  bool set_cancelled() const { return state()->set_cancelled(); }

 private:
  detail::FutureState<T>* state() const noexcept {
    return static_cast<detail::FutureState<T>*>(handle_.state());
  }

  TaskHandle<T> handle_;
};

}  // namespace taskwire
