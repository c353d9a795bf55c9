#include "server/dispatcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <utility>

#include "core/event.h"
#include "server/dispatch_policy.h"

namespace taskwire::server {
namespace {

constexpr std::uint32_t kMaxCredits = 100'000;
constexpr std::size_t kMaxNameBytes = 256;
constexpr int kMaxBatchMessages = 10'000;

void set_duration(Duration duration, google::protobuf::Duration* out) {
  out->set_seconds(duration.count() / 1'000'000'000);
  out->set_nanos(static_cast<std::int32_t>(duration.count() % 1'000'000'000));
}

grpc::Status invalid_stream(const std::string& field, const std::string& rule) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, field + ": " + rule);
}

std::string describe(const v1::TaskToken& token) {
  return "attempt " + std::to_string(token.attempt()) + " of task " + token.task_id();
}

const char* message_name(const v1::WorkerMessage& message) {
  switch (message.message_case()) {
    case v1::WorkerMessage::kHello:
      return "hello";
    case v1::WorkerMessage::kResult:
      return "result";
    case v1::WorkerMessage::kFailure:
      return "failure";
    case v1::WorkerMessage::kTaskHeartbeat:
      return "task_heartbeat";
    case v1::WorkerMessage::kHeartbeat:
      return "heartbeat";
    case v1::WorkerMessage::kBatch:
      return "batch";
    default:
      return "an empty message";
  }
}

}  // namespace

struct Dispatcher::Attempt {
  const AttemptSpec* spec = nullptr;
  TokenKey key;
  KindQueue* queue = nullptr;
  Worker* worker = nullptr;  // While assigned and not over.
  bool queued = false;
  bool settled = false;
  AttemptOutcome outcome;
  Event done;
  CallbackHandle schedule_timer;
  CallbackHandle close_timer;
  CallbackHandle heartbeat_timer;
};

struct Dispatcher::Worker {
  WorkerId id = 0;
  WorkerStream* stream = nullptr;
  bool greeted = false;
  std::string identity;
  std::vector<std::string> kinds;
  std::uint32_t credits = 0;
  // Credits in use: every token assigned and not yet answered.
  TokenMap<Held> held;
  TimePoint last_seen;
  CallbackHandle liveness;

  std::string name() const {
    return "worker " + std::to_string(id) + (identity.empty() ? "" : " (" + identity + ")");
  }
};

struct Dispatcher::KindQueue {
  std::deque<Attempt*> waiting;
  std::vector<Worker*> workers;  // Greeted workers that run the kind.
  std::size_t next = 0;          // Where the round robin starts.
  std::uint32_t running = 0;     // Attempts assigned and not over.
};

Dispatcher::Dispatcher(EventLoop& loop, DispatcherOptions options)
    : loop_(loop), options_(std::move(options)) {}

Dispatcher::~Dispatcher() {
  for (auto& [id, worker] : workers_) worker->liveness.cancel();
}

Dispatcher::WorkerId Dispatcher::attach(WorkerStream* stream) {
  auto worker = std::make_unique<Worker>();
  worker->id = next_id_++;
  worker->stream = stream;
  worker->last_seen = loop_.now();
  Worker& added = *worker;
  workers_.emplace(added.id, std::move(worker));
  arm_liveness(added);
  return added.id;
}

void Dispatcher::arm_liveness(Worker& worker) {
  worker.liveness = loop_.call_at(worker.last_seen + options_.heartbeat_timeout, [this,
                                                                                  id = worker.id] {
    auto it = workers_.find(id);
    if (it == workers_.end()) return;
    Worker& found = *it->second;
    if (loop_.now() - found.last_seen >= options_.heartbeat_timeout) {
      drop(found,
           grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "heartbeat: no message for " + seconds_text(options_.heartbeat_timeout) +
                            " (the server's heartbeat timeout); the worker counts as lost"),
           "missed heartbeats");
    } else {
      arm_liveness(found);
    }
  });
}

void Dispatcher::receive(WorkerId id, v1::WorkerMessage& message) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;  // Dropped already; its stream is closing.
  Worker& worker = *it->second;
  worker.last_seen = loop_.now();
  if (message.message_case() == v1::WorkerMessage::kBatch && worker.greeted) {
    receive_batch(id, *message.mutable_batch());
  } else {
    receive_one(worker, message);
  }
}

void Dispatcher::receive_batch(WorkerId id, v1::WorkerBatch& batch) {
  Worker* worker = workers_.at(id).get();
  if (batch.messages_size() > kMaxBatchMessages) {
    drop(*worker,
         invalid_stream("batch.messages", "at most " + std::to_string(kMaxBatchMessages) +
                                              " messages, got " +
                                              std::to_string(batch.messages_size())),
         "oversized batch");
    return;
  }
  for (int i = 0; i < batch.messages_size(); ++i) {
    const auto which = batch.messages(i).message_case();
    if (which == v1::WorkerMessage::kHello || which == v1::WorkerMessage::kBatch) {
      drop(*worker,
           invalid_stream("batch.messages[" + std::to_string(i) + "]",
                          std::string("a batch holds no ") + message_name(batch.messages(i))),
           "malformed batch");
      return;
    }
  }
  for (v1::WorkerMessage& message : *batch.mutable_messages()) {
    receive_one(*worker, message);
    // A message may have cost the worker its stream (an empty one does).
    auto it = workers_.find(id);
    if (it == workers_.end()) return;
    worker = it->second.get();
  }
}

void Dispatcher::receive_one(Worker& worker, v1::WorkerMessage& message) {
  const auto which = message.message_case();
  if (which == v1::WorkerMessage::MESSAGE_NOT_SET) {
    drop(worker, invalid_stream("message", "empty: one field of the oneof must be set"),
         "empty message");
    return;
  }
  if (which == v1::WorkerMessage::kHello) {
    if (worker.greeted) {
      drop(worker, invalid_stream("hello", "sent twice: a stream says hello once"), "second hello");
    } else {
      on_hello(worker, message.hello());
    }
    return;
  }
  if (!worker.greeted) {
    drop(worker,
         invalid_stream("message", std::string("the first message must be hello, got ") +
                                       message_name(message)),
         "no hello");
    return;
  }
  switch (which) {
    case v1::WorkerMessage::kResult:
      on_answer(worker, message.result().token(), message, "result");
      break;
    case v1::WorkerMessage::kFailure:
      on_answer(worker, message.failure().token(), message, "failure");
      break;
    case v1::WorkerMessage::kTaskHeartbeat:
      on_task_heartbeat(worker, message.task_heartbeat());
      break;
    default:
      break;  // A worker heartbeat: last_seen is all it does.
  }
}

void Dispatcher::on_hello(Worker& worker, const v1::Hello& hello) {
  grpc::Status error;
  if (hello.identity().size() > kMaxNameBytes) {
    error = invalid_stream("hello.identity",
                           "at most 256 bytes, got " + std::to_string(hello.identity().size()));
  } else if (hello.credits() == 0) {
    error = invalid_stream("hello.credits", "must be at least 1");
  } else if (hello.credits() > kMaxCredits) {
    error =
        invalid_stream("hello.credits", "at most 100000, got " + std::to_string(hello.credits()));
  } else if (hello.kinds().empty()) {
    error = invalid_stream("hello.kinds", "must name at least one kind");
  }
  std::set<std::string_view> seen;
  for (int i = 0; error.ok() && i < hello.kinds_size(); ++i) {
    const std::string& kind = hello.kinds(i);
    std::string field = "hello.kinds[" + std::to_string(i) + "]";
    if (kind.empty()) {
      error = invalid_stream(field, "must not be empty");
    } else if (kind.size() > kMaxNameBytes) {
      error = invalid_stream(field, "at most 256 bytes, got " + std::to_string(kind.size()));
    } else if (!seen.insert(kind).second) {
      error = invalid_stream(field, "'" + kind + "' is named twice");
    }
  }
  if (!error.ok()) {
    drop(worker, error, "malformed hello");
    return;
  }
  worker.greeted = true;
  worker.identity = hello.identity();
  worker.credits = hello.credits();
  worker.kinds.assign(hello.kinds().begin(), hello.kinds().end());
  for (const std::string& kind : worker.kinds) queues_[kind].workers.push_back(&worker);
  if (hello.batches()) worker.stream->allow_batches();
  v1::ServerMessage welcome;
  welcome.mutable_welcome()->set_batches(true);
  welcome.mutable_welcome()->set_worker_id(std::to_string(worker.id));
  set_duration(options_.heartbeat_interval,
               welcome.mutable_welcome()->mutable_heartbeat_interval());
  set_duration(options_.heartbeat_timeout, welcome.mutable_welcome()->mutable_heartbeat_timeout());
  worker.stream->send(std::move(welcome));
  spdlog::info("{} connected: {} credit(s), kinds {}", worker.name(), worker.credits,
               fmt::join(worker.kinds, ", "));
  for (const std::string& kind : worker.kinds) pump(queues_[kind]);
}

Dispatcher::Attempt* Dispatcher::find_held(Worker& worker, const v1::TaskToken& token,
                                           const std::string& field, bool release_if_fenced) {
  if (token.task_id().empty()) {
    reject(worker, &token, field + ".token.task_id", "required");
    return nullptr;
  }
  if (token.attempt() == 0) {
    reject(worker, &token, field + ".token.attempt", "must be at least 1");
    return nullptr;
  }
  const std::optional<TaskId> task_id = TaskId::parse(token.task_id());
  const TokenKey key{task_id.value_or(TaskId{}), token.attempt()};
  auto it = task_id ? worker.held.find(key) : worker.held.end();
  if (it == worker.held.end()) {
    if (task_id && live_.contains(key)) {
      reject(worker, &token, field + ".token",
             describe(token) + " is assigned to another worker, not this one");
    } else {
      reject(worker, &token, field + ".token",
             "unknown token: this worker holds no " + describe(token));
    }
    return nullptr;
  }
  if (it->second.attempt == nullptr) {
    reject(worker, &token, field + ".token",
           "stale token: " + describe(token) + " is over (" + it->second.fenced_because + ")");
    if (release_if_fenced) {
      KindQueue& queue = *it->second.queue;
      worker.held.erase(it);
      pump(queue);
    }
    return nullptr;
  }
  return it->second.attempt;
}

void Dispatcher::on_answer(Worker& worker, const v1::TaskToken& token, v1::WorkerMessage& message,
                           const std::string& field) {
  if (message.has_failure() && message.failure().cancelled()) {
    // The expected answer to a Cancel: give the credit back quietly.
    std::optional<TaskId> task_id = TaskId::parse(token.task_id());
    auto it = task_id ? worker.held.find(TokenKey{*task_id, token.attempt()}) : worker.held.end();
    if (it != worker.held.end() && it->second.attempt == nullptr) {
      KindQueue& queue = *it->second.queue;
      worker.held.erase(it);
      pump(queue);
      return;
    }
  }
  Attempt* attempt = find_held(worker, token, field, true);
  if (attempt == nullptr) return;
  worker.held.erase(attempt->key);
  AttemptOutcome outcome;
  if (message.has_result()) {
    std::size_t bytes = message.result().result().ByteSizeLong();
    if (bytes > options_.max_result_bytes) {
      std::string rule = std::to_string(bytes) + " bytes is over the limit of " +
                         std::to_string(options_.max_result_bytes) + " (--max-worker-result-bytes)";
      reject(worker, &token, "result.result", rule);
      outcome.ending = AttemptOutcome::Ending::kFailed;
      outcome.error_type = "ResultTooLarge";
      outcome.error_message = "the worker's result: " + rule;
      outcome.non_retryable = true;
    } else {
      outcome.result.Swap(message.mutable_result()->mutable_result());
    }
  } else {
    const v1::TaskFailure& failure = message.failure();
    outcome.ending = AttemptOutcome::Ending::kFailed;
    outcome.error_type = failure.type().empty() ? "WorkerError" : failure.type();
    outcome.error_message = failure.message();
    outcome.error_details = failure.details();
    outcome.non_retryable = failure.non_retryable();
  }
  settle(*attempt, std::move(outcome));
}

void Dispatcher::on_task_heartbeat(Worker& worker, const v1::TaskHeartbeat& heartbeat) {
  Attempt* attempt = find_held(worker, heartbeat.token(), "task_heartbeat", false);
  if (attempt == nullptr) return;
  if (attempt->spec->heartbeat_timeout) arm_heartbeat(*attempt);
  if (heartbeat.has_details() && attempt->spec->on_progress)
    attempt->spec->on_progress(heartbeat.details());
}

void Dispatcher::reject(Worker& worker, const v1::TaskToken* token, const std::string& field,
                        const std::string& reason) {
  spdlog::warn("{}: rejected: {}: {}", worker.name(), field, reason);
  v1::ServerMessage message;
  v1::Rejection* rejection = message.mutable_rejection();
  if (token != nullptr) *rejection->mutable_token() = *token;
  rejection->set_field(field);
  rejection->set_reason(reason);
  worker.stream->send(std::move(message));
}

void Dispatcher::drop(Worker& worker, const grpc::Status& status, const std::string& why) {
  if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
    spdlog::warn("{}: ending the stream: {}", worker.name(), status.error_message());
  }
  worker.stream->close(status);
  lose(worker, why);
}

void Dispatcher::detach(WorkerId id) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  lose(*it->second, "its stream ended");
}

void Dispatcher::lose(Worker& worker, const std::string& why) {
  worker.liveness.cancel();
  for (const std::string& kind : worker.kinds) std::erase(queues_[kind].workers, &worker);
  std::vector<Attempt*> lost;
  for (auto& [key, held] : worker.held) {
    if (held.attempt != nullptr) lost.push_back(held.attempt);
  }
  if (worker.greeted) {
    spdlog::info("{} lost ({}); {} running attempt(s) lost with it", worker.name(), why,
                 lost.size());
  }
  const std::string name = worker.name();
  const WorkerId id = worker.id;  // Not a reference into the node erased.
  worker.held.clear();
  workers_.erase(id);  // `worker` is gone from here on.
  for (Attempt* attempt : lost) {
    AttemptOutcome outcome;
    outcome.ending = AttemptOutcome::Ending::kWorkerLost;
    outcome.error_type = "WorkerLost";
    outcome.error_message = name + " was lost (" + why + ") while running attempt " +
                            std::to_string(attempt->spec->attempt);
    settle(*attempt, std::move(outcome));
  }
}

Task<AttemptOutcome> Dispatcher::run_attempt(const AttemptSpec& spec) {
  Attempt attempt;
  attempt.spec = &spec;
  attempt.key = TokenKey{spec.task_id, spec.attempt};
  attempt.queue = &queues_[spec.kind];
  // However the caller leaves (cancelled included), the attempt ends.
  struct Withdraw {
    Dispatcher* dispatcher;
    Attempt* attempt;
    ~Withdraw() {
      if (!attempt->settled) dispatcher->withdraw(*attempt);
    }
  } withdraw{this, &attempt};
  attempt.queue->waiting.push_back(&attempt);
  attempt.queued = true;
  if (spec.schedule_to_start_timeout) {
    attempt.schedule_timer =
        loop_.call_later(*spec.schedule_to_start_timeout, [this, &attempt, &spec] {
          AttemptOutcome outcome;
          outcome.ending = AttemptOutcome::Ending::kNeverStarted;
          outcome.error_type = "TimeoutError";
          outcome.error_message =
              "no worker took the task within its schedule_to_start_timeout of " +
              seconds_text(*spec.schedule_to_start_timeout);
          outcome.non_retryable = true;
          settle(attempt, std::move(outcome));
        });
  }
  pump(*attempt.queue);
  co_await attempt.done.wait();
  co_return std::move(attempt.outcome);
}

void Dispatcher::withdraw(Attempt& attempt) {
  if (attempt.worker != nullptr) fence(attempt, "cancelled");
  AttemptOutcome outcome;
  outcome.ending = AttemptOutcome::Ending::kFailed;
  outcome.error_type = "CancelledError";
  settle(attempt, std::move(outcome));
}

void Dispatcher::fence(Attempt& attempt, const std::string& reason) {
  Worker& worker = *attempt.worker;
  auto it = worker.held.find(attempt.key);
  if (it != worker.held.end()) {
    it->second.attempt = nullptr;
    it->second.fenced_because = reason;
  }
  v1::ServerMessage message;
  v1::TaskToken* token = message.mutable_cancel()->mutable_token();
  token->set_task_id(attempt.spec->task_id.to_string());
  token->set_attempt(attempt.spec->attempt);
  message.mutable_cancel()->set_reason(reason);
  worker.stream->send(std::move(message));
}

void Dispatcher::settle(Attempt& attempt, AttemptOutcome outcome) {
  attempt.settled = true;
  attempt.schedule_timer.cancel();
  attempt.close_timer.cancel();
  attempt.heartbeat_timer.cancel();
  KindQueue& queue = *attempt.queue;
  if (attempt.queued) {
    std::erase(queue.waiting, &attempt);
    attempt.queued = false;
  }
  const bool was_assigned = attempt.worker != nullptr;
  if (was_assigned) {
    live_.erase(attempt.key);
    --queue.running;
    attempt.worker = nullptr;
  }
  attempt.outcome = std::move(outcome);
  attempt.done.set();
  if (was_assigned) pump(queue);
}

void Dispatcher::pump(KindQueue& queue) {
  while (!queue.waiting.empty()) {
    if (options_.max_running_per_kind != 0 && queue.running >= options_.max_running_per_kind)
      return;
    Worker* worker = pick(queue);
    if (worker == nullptr) return;
    Attempt* attempt = queue.waiting.front();
    queue.waiting.pop_front();
    attempt->queued = false;
    assign(*attempt, *worker);
  }
}

Dispatcher::Worker* Dispatcher::pick(KindQueue& queue) {
  const std::size_t n = queue.workers.size();
  Worker* best = nullptr;
  std::size_t best_index = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t index = (queue.next + i) % n;
    Worker* worker = queue.workers[index];
    if (worker->held.size() >= worker->credits) continue;
    // Least loaded first: held / credits, compared without division.
    if (best == nullptr ||
        worker->held.size() * best->credits < best->held.size() * worker->credits) {
      best = worker;
      best_index = index;
    }
  }
  if (best != nullptr) queue.next = (best_index + 1) % n;
  return best;
}

void Dispatcher::assign(Attempt& attempt, Worker& worker) {
  const AttemptSpec& spec = *attempt.spec;
  attempt.worker = &worker;
  worker.held[attempt.key] = Held{&attempt, attempt.queue, {}};
  live_[attempt.key] = &attempt;
  ++attempt.queue->running;
  attempt.schedule_timer.cancel();
  if (spec.start_to_close_timeout) {
    attempt.close_timer = loop_.call_later(*spec.start_to_close_timeout, [this, &attempt] {
      on_timeout(attempt, "start_to_close_timeout", *attempt.spec->start_to_close_timeout);
    });
  }
  if (spec.heartbeat_timeout) arm_heartbeat(attempt);
  v1::ServerMessage message;
  v1::Assignment* assignment = message.mutable_assignment();
  assignment->mutable_token()->set_task_id(spec.task_id.to_string());
  assignment->mutable_token()->set_attempt(spec.attempt);
  assignment->set_kind(spec.kind);
  *assignment->mutable_args() = *spec.args;
  if (spec.heartbeat_timeout)
    set_duration(*spec.heartbeat_timeout, assignment->mutable_heartbeat_timeout());
  if (spec.start_to_close_timeout)
    set_duration(*spec.start_to_close_timeout, assignment->mutable_start_to_close_timeout());
  worker.stream->send(std::move(message));
  if (spec.on_started) spec.on_started();
}

void Dispatcher::arm_heartbeat(Attempt& attempt) {
  attempt.heartbeat_timer.cancel();
  attempt.heartbeat_timer = loop_.call_later(*attempt.spec->heartbeat_timeout, [this, &attempt] {
    on_timeout(attempt, "heartbeat_timeout", *attempt.spec->heartbeat_timeout);
  });
}

void Dispatcher::on_timeout(Attempt& attempt, const std::string& which, Duration limit) {
  if (attempt.settled || attempt.worker == nullptr) return;
  fence(attempt, which);
  AttemptOutcome outcome;
  outcome.ending = AttemptOutcome::Ending::kTimedOut;
  outcome.error_type = "TimeoutError";
  outcome.error_message = "attempt " + std::to_string(attempt.spec->attempt) + " exceeded its " +
                          which + " of " + seconds_text(limit);
  settle(attempt, std::move(outcome));
}

bool Dispatcher::owes_answers(WorkerId id) const {
  auto it = workers_.find(id);
  return it != workers_.end() && !it->second->held.empty();
}

bool Dispatcher::runs(std::string_view kind) const {
  auto it = queues_.find(kind);
  return it != queues_.end() && !it->second.workers.empty();
}

std::vector<std::string> Dispatcher::kinds() const {
  std::vector<std::string> names;
  for (const auto& [name, queue] : queues_) {
    if (!queue.workers.empty()) names.push_back(name);
  }
  return names;
}

std::size_t Dispatcher::queued(std::string_view kind) const {
  auto it = queues_.find(kind);
  return it == queues_.end() ? 0 : it->second.waiting.size();
}

std::vector<std::pair<std::string, std::size_t>> Dispatcher::queue_depths() const {
  std::vector<std::pair<std::string, std::size_t>> depths;
  depths.reserve(queues_.size());
  for (const auto& [name, queue] : queues_) depths.emplace_back(name, queue.waiting.size());
  return depths;
}

}  // namespace taskwire::server
