#include "server/worker_kind.h"

#include "core/sleep.h"
#include "server/dispatch_policy.h"

namespace taskwire::server {

Kind* WorkerKinds::find(std::string_view name) {
  auto it = kinds_.find(name);
  if (it == kinds_.end()) {
    it = kinds_
             .emplace(std::string(name),
                      std::make_unique<WorkerKind>(std::string(name), dispatcher_, registry_))
             .first;
  }
  return it->second.get();
}

std::optional<std::string> WorkerKind::validate(const Value&) const {
  if (dispatcher_.options().refuse_unknown_kinds && !dispatcher_.runs(name_)) {
    return "kind: unknown kind '" + name_ +
           "': no connected worker runs it (--refuse-unknown-kinds); known kinds: " +
           registry_.names();
  }
  return std::nullopt;
}

namespace {

// Says why a retryable failure ends the task, when the attempts ran out.
std::string no_attempts_left(std::uint32_t attempt, const DispatchPolicy& policy) {
  if (policy.maximum_attempts == 0 || attempt < policy.maximum_attempts) return "";
  return " (attempt " + std::to_string(attempt) + " of " + std::to_string(policy.maximum_attempts) +
         "; no attempts left)";
}

}  // namespace

Task<Value> WorkerKind::run(Value args, const TaskContext& context) {
  // A dispatched kind is always run with its dispatch context.
  const TaskContext::Extras& dispatch = *context.extras;
  const DispatchPolicy policy = DispatchPolicy::from(dispatch.options);
  const std::uint32_t before = dispatch.attempts_before;
  if (dispatch.last_attempt_cut_off && !policy.may_retry(before, "WorkerLost")) {
    throw TaskFailure("WorkerLost", "attempt " + std::to_string(before) +
                                        " was running on a worker when the server restarted" +
                                        no_attempts_left(before, policy));
  }
  for (std::uint32_t attempt = before + 1;; ++attempt) {
    AttemptSpec spec;
    spec.task_id = context.id;
    spec.attempt = attempt;
    spec.kind = name_;
    spec.args = &args;
    spec.schedule_to_start_timeout = policy.schedule_to_start_timeout;
    spec.start_to_close_timeout = policy.start_to_close_timeout;
    spec.heartbeat_timeout = policy.heartbeat_timeout;
    spec.on_started = [&dispatch, attempt] {
      if (dispatch.report) dispatch.report(::taskwire::v1::TASK_STATE_RUNNING, attempt);
    };
    spec.on_progress = [&dispatch](const Value& details) {
      if (dispatch.progress) dispatch.progress(details);
    };
    AttemptOutcome outcome = co_await dispatcher_.run_attempt(spec);
    if (outcome.ending == AttemptOutcome::Ending::kSucceeded) co_return std::move(outcome.result);
    const bool retry = outcome.ending != AttemptOutcome::Ending::kNeverStarted &&
                       !outcome.non_retryable && policy.may_retry(attempt, outcome.error_type);
    if (!retry) {
      std::string message = outcome.error_message;
      if (outcome.ending != AttemptOutcome::Ending::kNeverStarted && !outcome.non_retryable)
        message += no_attempts_left(attempt, policy);
      throw TaskFailure(outcome.error_type, message, outcome.error_details);
    }
    if (dispatch.report) dispatch.report(::taskwire::v1::TASK_STATE_PENDING, attempt);
    co_await sleep(policy.backoff(attempt));
  }
}

}  // namespace taskwire::server
