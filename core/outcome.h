#pragma once

#include <exception>
#include <utility>
#include <variant>

#include "core/detail/awaitable_traits.h"
#include "core/errors.h"
#include "core/task_handle.h"

namespace taskwire {

// How a task ended, as gather_outcomes reports it (asyncio's
// return_exceptions=True): a value, or the exception it raised, with a
// cancelled task's outcome holding a CancelledError.
template <typename T>
class Outcome {
 public:
  using value_type = detail::StoredValue<T>;

  static Outcome of(const TaskHandle<T>& task) {
    if (task.cancelled()) return Outcome(std::make_exception_ptr(CancelledError()));
    if (std::exception_ptr error = task.exception()) return Outcome(std::move(error));
    return Outcome(detail::stored_value(task));
  }

  explicit Outcome(value_type value) : outcome_(std::move(value)) {}
  explicit Outcome(std::exception_ptr error) : outcome_(std::move(error)) {}

  bool ok() const noexcept { return outcome_.index() == 0; }
  // The value; rethrows the exception if the task did not succeed.
  const value_type& value() const {
    if (!ok()) std::rethrow_exception(std::get<1>(outcome_));
    return std::get<0>(outcome_);
  }
  // The exception, or null if the task succeeded.
  std::exception_ptr error() const noexcept { return ok() ? nullptr : std::get<1>(outcome_); }
  bool cancelled() const {
    if (ok()) return false;
    try {
      std::rethrow_exception(std::get<1>(outcome_));
    } catch (const CancelledError&) {
      return true;
    } catch (...) {
      return false;
    }
  }

 private:
  std::variant<value_type, std::exception_ptr> outcome_;
};

}  // namespace taskwire
