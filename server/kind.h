#pragma once

#include <google/protobuf/struct.pb.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/task.h"
#include "server/task_id.h"
#include "taskwire/v1/tasks.pb.h"

namespace taskwire::server {

using google::protobuf::Value;

// What a running task knows about itself. Held by the running task's frame
// for as long as it runs, so kept small: the id's text is made on demand.
struct TaskContext {
  // What only some tasks are given, kept apart so that the common task pays
  // one pointer for it.
  struct Extras {
    // For a dispatched kind (Kind::dispatched()): the task's dispatch
    // options, how the kind reports that an attempt started (RUNNING) or
    // that the task waits for its next attempt (PENDING), and how it
    // records the progress a worker reported.
    ::taskwire::v1::DispatchOptions options;
    std::function<void(::taskwire::v1::TaskState, std::uint32_t attempt)> report;
    std::function<void(const Value& details)> progress;
    // Non-zero when the server restarted while the task was dispatched:
    // the attempts it had made, the last of them cut off if it was running
    // (its outcome went with the old server process).
    std::uint32_t attempts_before = 0;
    bool last_attempt_cut_off = false;
    // For a task run again after a restart: how long ago it first started,
    // so that a kind keeps its original deadline (a 10 s sleep started at t
    // ends at t + 10 s whatever restarts happen between).
    Duration ran_before{};
  };

  TaskId id;
  std::uint32_t attempt = 1;
  std::unique_ptr<Extras> extras;  // Null for a built-in kind's first run.
};

// Thrown by a kind to fail its task with a type and details of its own
// choosing (any other exception fails it with type "InternalError").
class TaskFailure : public std::runtime_error {
 public:
  TaskFailure(std::string type, const std::string& message, Value details = {})
      : std::runtime_error(message), type_(std::move(type)), details_(std::move(details)) {}
  const std::string& type() const noexcept { return type_; }
  const Value& details() const noexcept { return details_; }

 private:
  std::string type_;
  Value details_;
};

// A kind of task: the one interface through which the server learns what
// it can run. Built-in kinds run on the server's loop; a kind could as well
// hand the work to a worker elsewhere and await its answer.
class Kind {
 public:
  virtual ~Kind() = default;
  virtual std::string_view name() const = 0;
  // Checks the arguments before the task is accepted. On error, says which
  // field (as "args.<field>") breaks which rule.
  virtual std::optional<std::string> validate(const Value& args) const = 0;
  // Runs the task on the server's loop. Cancellation arrives as
  // CancelledError at a suspension point. `context` outlives the run.
  virtual Task<Value> run(Value args, const TaskContext& context) = 0;
  // True for a kind whose task starts when a worker takes it rather than
  // when run() is called: the task stays PENDING until the kind reports an
  // attempt through TaskContext::report.
  virtual bool dispatched() const { return false; }
};

// Kinds beyond the built-in ones, which come and go (those that workers
// register).
class KindFallback {
 public:
  virtual ~KindFallback() = default;
  // The kind of this name, or null to refuse the name.
  virtual Kind* find(std::string_view name) = 0;
  // The names known now, for error messages.
  virtual std::vector<std::string> names() const = 0;
};

class KindRegistry {
 public:
  // Registers a kind; replaces any kind of the same name.
  void add(std::unique_ptr<Kind> kind);
  // Asks `fallback` (which must outlive the registry) for names that are
  // not registered.
  void set_fallback(KindFallback* fallback) { fallback_ = fallback; }
  Kind* find(std::string_view name) const;
  // The names, sorted and comma-separated, for error messages.
  std::string names() const;

 private:
  std::map<std::string, std::unique_ptr<Kind>, std::less<>> kinds_;
  KindFallback* fallback_ = nullptr;
};

}  // namespace taskwire::server
