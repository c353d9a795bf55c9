#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace taskwire {

// Raised at a task's suspension point when the task is cancelled. A task may
// catch it to clean up; a task that lets it escape finishes as cancelled.
class CancelledError : public std::exception {
 public:
  const char* what() const noexcept override { return "task was cancelled"; }
};

// Raised by wait_for and other deadlines when the time runs out.
class TimeoutError : public std::runtime_error {
 public:
  TimeoutError() : std::runtime_error("operation timed out") {}
  explicit TimeoutError(const std::string& what) : std::runtime_error(what) {}
};

// Raised when an operation does not fit the object's state, such as asking
// for the result of a task that has not finished.
class InvalidStateError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Raised by TaskGroup::join when one or more of its tasks failed.
class ExceptionGroup : public std::runtime_error {
 public:
  explicit ExceptionGroup(std::vector<std::exception_ptr> exceptions);
  const std::vector<std::exception_ptr>& exceptions() const { return exceptions_; }

 private:
  std::vector<std::exception_ptr> exceptions_;
};

// A short description of an exception_ptr's exception, for logs.
std::string describe(const std::exception_ptr& e);

// Whether `error` holds an exception of type E (or one derived from it).
template <typename E>
bool holds(const std::exception_ptr& error) {
  if (!error) return false;
  try {
    std::rethrow_exception(error);
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace taskwire
