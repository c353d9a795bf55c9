#include "core/errors.h"

namespace taskwire {
namespace {

std::string summary(const std::vector<std::exception_ptr>& exceptions) {
  std::string text = std::to_string(exceptions.size()) + " task(s) failed";
  if (!exceptions.empty()) text += "; first: " + describe(exceptions.front());
  return text;
}

}  // namespace

ExceptionGroup::ExceptionGroup(std::vector<std::exception_ptr> exceptions)
    : std::runtime_error(summary(exceptions)), exceptions_(std::move(exceptions)) {}

std::string describe(const std::exception_ptr& e) {
  if (!e) return "no exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace taskwire
