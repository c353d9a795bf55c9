#pragma once

#include <coroutine>
#include <exception>
#include <type_traits>
#include <utility>
#include <variant>

#include "core/detail/frame_allocator.h"
#include "core/errors.h"

namespace taskwire {

template <typename T = void>
class Task;

namespace detail {

// The scheduled task a body belongs to when the loop runs it as a task
// rather than another coroutine awaiting it (task_state.h).
class TaskStateBase;
// Tells `root` that its body has finished; the result is in the body's
// promise. May destroy the body's frame. (A function rather than a base
// class with a virtual, so that a task's state carries one vtable pointer.)
void on_root_body_done(TaskStateBase& root) noexcept;

// Symmetric transfer back to whoever awaited the task, so that a chain of
// nested co_awaits runs in constant stack space. GCC emits the transfer as a
// sibling call: build with optimization or -foptimize-sibling-calls (the
// project's .bazelrc does).
struct FinalAwaiter {
  bool await_ready() const noexcept { return false; }
  template <typename Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) const noexcept {
    auto& promise = self.promise();
    if (promise.continuation_) return promise.continuation_;
    if (promise.root_ != nullptr) on_root_body_done(*promise.root_);  // May free the frame.
    return std::noop_coroutine();
  }
  void await_resume() const noexcept {}
};

class TaskPromiseBase {
 public:
  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter final_suspend() const noexcept { return {}; }

  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* frame, std::size_t size) noexcept {
    deallocate_frame(frame, size);
  }

  void set_root(TaskStateBase* root) noexcept { root_ = root; }

 private:
  friend struct FinalAwaiter;
  template <typename>
  friend class taskwire::Task;
  std::coroutine_handle<> continuation_;
  TaskStateBase* root_ = nullptr;
};

template <typename T>
class TaskPromise final : public TaskPromiseBase {
 public:
  Task<T> get_return_object() noexcept;
  void unhandled_exception() noexcept { result_.template emplace<2>(std::current_exception()); }
  template <typename U>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) { result_.template emplace<1>(std::forward<U>(value)); }

  T& result() & {
    if (result_.index() == 2) std::rethrow_exception(std::get<2>(result_));
    return std::get<1>(result_);
  }
  T&& result() && { return std::move(result()); }
  // For a finished body: its exception, or null if it returned a value.
  std::exception_ptr exception() const noexcept {
    return result_.index() == 2 ? std::get<2>(result_) : nullptr;
  }
  T&& value() noexcept { return std::move(std::get<1>(result_)); }

 private:
  std::variant<std::monostate, T, std::exception_ptr> result_;
};

template <>
class TaskPromise<void> final : public TaskPromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }
  void return_void() noexcept {}
  void result() const {
    if (exception_) std::rethrow_exception(exception_);
  }
  std::exception_ptr exception() const noexcept { return exception_; }

 private:
  std::exception_ptr exception_;
};

}  // namespace detail

// A lazily started coroutine: nothing runs until it is awaited (or handed to
// EventLoop::create_task, which schedules it). Move-only; awaiting it runs
// the body through symmetric transfer and gives its value or rethrows its
// exception. Awaiting an lvalue gives a reference to the result, an rvalue
// moves it out. Awaiting an empty (moved-from) task is an InvalidStateError.
template <typename T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;

  Task() noexcept = default;
  explicit Task(std::coroutine_handle<promise_type> handle) noexcept : handle_(handle) {}
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { destroy(); }

  bool valid() const noexcept { return static_cast<bool>(handle_); }
  // Gives up ownership of the coroutine frame (to a scheduled task).
  std::coroutine_handle<promise_type> release() noexcept { return std::exchange(handle_, {}); }
  bool done() const noexcept { return !handle_ || handle_.done(); }

  auto operator co_await() & noexcept { return Awaiter<false>{handle_}; }
  auto operator co_await() && noexcept { return Awaiter<true>{handle_}; }

 private:
  template <bool kMove>
  struct Awaiter {
    std::coroutine_handle<promise_type> handle;

    bool await_ready() const {
      if (!handle) throw InvalidStateError("awaited an empty Task");
      return handle.done();
    }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
      handle.promise().continuation_ = awaiting;
      return handle;
    }
    // An rvalue await returns by value: the frame holding the result dies
    // with the temporary Task at the end of the full expression.
    using Result = std::conditional_t<kMove, T, std::add_lvalue_reference_t<T>>;
    Result await_resume() {
      if constexpr (std::is_void_v<T>) {
        handle.promise().result();
      } else if constexpr (kMove) {
        return std::move(handle.promise()).result();
      } else {
        return handle.promise().result();
      }
    }
  };

  void destroy() noexcept {
    if (handle_) handle_.destroy();
  }

  std::coroutine_handle<promise_type> handle_;
};

namespace detail {

template <typename T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}

inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}

}  // namespace detail
}  // namespace taskwire
