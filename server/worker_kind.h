#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/dispatcher.h"
#include "server/kind.h"

namespace taskwire::server {

// The kinds workers run, as the task manager sees them: every name that is
// not built in is a WorkerKind, whose tasks the dispatcher hands to
// workers. With refuse_unknown_kinds, creating a task of a kind no
// connected worker runs is INVALID_ARGUMENT; otherwise it waits, PENDING,
// for a worker.
class WorkerKinds final : public KindFallback {
 public:
  // `registry` is asked for the known names in error messages.
  WorkerKinds(Dispatcher& dispatcher, const KindRegistry& registry)
      : dispatcher_(dispatcher), registry_(registry) {}

  Kind* find(std::string_view name) override;
  std::vector<std::string> names() const override { return dispatcher_.kinds(); }

 private:
  Dispatcher& dispatcher_;
  const KindRegistry& registry_;
  std::map<std::string, std::unique_ptr<Kind>, std::less<>> kinds_;
};

// One kind run by workers. Its run() is the retry loop of one task: an
// attempt through the dispatcher, then, if it failed and the task's retry
// policy allows, a backoff and the next attempt.
class WorkerKind final : public Kind {
 public:
  WorkerKind(std::string name, Dispatcher& dispatcher, const KindRegistry& registry)
      : name_(std::move(name)), dispatcher_(dispatcher), registry_(registry) {}

  std::string_view name() const override { return name_; }
  std::optional<std::string> validate(const Value& args) const override;
  Task<Value> run(Value args, const TaskContext& context) override;
  bool dispatched() const override { return true; }

 private:
  std::string name_;
  Dispatcher& dispatcher_;
  const KindRegistry& registry_;
};

}  // namespace taskwire::server
