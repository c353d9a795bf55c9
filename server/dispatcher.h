#pragma once

#include <grpcpp/support/status.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/event_loop.h"
#include "core/task.h"
#include "server/kind.h"
#include "server/task_id.h"
#include "taskwire/v1/workers.pb.h"

namespace taskwire::server {

namespace v1 = ::taskwire::v1;

// The dispatcher's settings; each is a flag of taskwired.
struct DispatcherOptions {
  // Refuse tasks of a kind no connected worker runs (INVALID_ARGUMENT)
  // instead of keeping them PENDING until one connects.
  bool refuse_unknown_kinds = false;
  // Largest serialized TaskResult.result accepted.
  std::size_t max_result_bytes = 1024 * 1024;
  // How often workers are asked to send something.
  Duration heartbeat_interval = std::chrono::seconds(2);
  // A worker silent this long is lost.
  Duration heartbeat_timeout = std::chrono::seconds(10);
  // Attempts of one kind running at once, over all workers; 0 for no limit.
  std::uint32_t max_running_per_kind = 0;
};

// How one attempt at a task ended.
struct AttemptOutcome {
  enum class Ending {
    kSucceeded,
    kFailed,        // The worker reported an error.
    kWorkerLost,    // Its worker disconnected or went silent.
    kTimedOut,      // start-to-close or heartbeat timeout.
    kNeverStarted,  // schedule-to-start timeout.
  };
  Ending ending = Ending::kSucceeded;
  Value result;
  std::string error_type;
  std::string error_message;
  Value error_details;
  bool non_retryable = false;
};

// One attempt to hand to a worker.
struct AttemptSpec {
  TaskId task_id;
  std::uint32_t attempt = 1;
  std::string kind;
  // Not copied: the task's arguments outlive its attempts.
  const Value* args = nullptr;
  std::optional<Duration> schedule_to_start_timeout;
  std::optional<Duration> start_to_close_timeout;
  std::optional<Duration> heartbeat_timeout;
  // Called when a worker takes the attempt.
  std::function<void()> on_started;
  // Called with the details of each task heartbeat that has some.
  std::function<void(const Value& details)> on_progress;
};

// One worker's stream as the dispatcher sees it (gRPC's side lives in
// worker_service.cc; tests use a fake).
class WorkerStream {
 public:
  virtual ~WorkerStream() = default;
  // Queues a message to the worker; dropped once the stream is closed.
  virtual void send(v1::ServerMessage message) = 0;
  // The worker said it understands ServerBatch: messages queued together
  // may go out as one.
  virtual void allow_batches() {}
  // Ends the stream with `status`. The dispatcher has forgotten the worker.
  virtual void close(const grpc::Status& status) = 0;
};

// Matches attempts of tasks with workers, on the loop thread. Pull-based:
// an attempt waits in its kind's queue until a worker of that kind has a
// free credit; among those, the least loaded (in-flight / credits) takes
// it, ties broken round robin. Every assignment is fenced by its token:
// once the attempt is over for the dispatcher, whatever the worker says
// about it is rejected. An attempt always ends: with the worker's answer,
// a timeout, or the loss of its worker; nothing waits forever on a worker
// that is gone.
class Dispatcher {
 public:
  using WorkerId = std::uint64_t;

  Dispatcher(EventLoop& loop, DispatcherOptions options);
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;
  ~Dispatcher();

  // A new stream; it must say Hello before anything else. `stream` must
  // stay valid until detach() or its close().
  WorkerId attach(WorkerStream* stream);
  // One message from the worker (a WorkerBatch: each of its messages in
  // turn). A result's value is taken out of `message`, not copied.
  void receive(WorkerId id, v1::WorkerMessage& message);
  void receive(WorkerId id, v1::WorkerMessage&& message) { receive(id, message); }
  // The stream is gone: its worker's running attempts are lost. Does
  // nothing for a worker the dispatcher already dropped.
  void detach(WorkerId id);

  // Runs one attempt: queues it, hands it to a worker, and returns how it
  // ended. Cancelling the caller withdraws the attempt (and tells its
  // worker to stop). `spec` must outlive the call.
  Task<AttemptOutcome> run_attempt(const AttemptSpec& spec);

  // The worker holds assignments it has not answered yet.
  bool owes_answers(WorkerId id) const;

  bool runs(std::string_view kind) const;
  // Kinds that connected workers run, sorted.
  std::vector<std::string> kinds() const;
  std::size_t worker_count() const { return workers_.size(); }
  std::size_t queued(std::string_view kind) const;
  // Attempts waiting for a worker, for each kind that has had a queue, by
  // kind (for metrics).
  std::vector<std::pair<std::string, std::size_t>> queue_depths() const;
  const DispatcherOptions& options() const { return options_; }

 private:
  struct Attempt;
  struct Worker;
  struct KindQueue;
  // A token as a key: numbers, not the text the wire carries, so that
  // keeping and finding one costs no allocation.
  struct TokenKey {
    TaskId task_id;
    std::uint32_t attempt = 0;
    friend bool operator==(const TokenKey&, const TokenKey&) = default;
  };
  struct TokenKeyHash {
    std::size_t operator()(const TokenKey& key) const noexcept {
      return TaskIdHash{}(key.task_id) + key.attempt;
    }
  };
  template <typename T>
  using TokenMap = std::unordered_map<TokenKey, T, TokenKeyHash>;
  // What a worker holds for one token: the attempt, or null once the
  // attempt is over for the dispatcher (the worker still owes an answer,
  // which gives its credit back).
  struct Held {
    Attempt* attempt = nullptr;
    KindQueue* queue = nullptr;
    std::string fenced_because;
  };

  void pump(KindQueue& queue);
  Worker* pick(KindQueue& queue);
  void assign(Attempt& attempt, Worker& worker);
  void settle(Attempt& attempt, AttemptOutcome outcome);
  void fence(Attempt& attempt, const std::string& reason);
  void withdraw(Attempt& attempt);
  void receive_one(Worker& worker, v1::WorkerMessage& message);
  void receive_batch(WorkerId id, v1::WorkerBatch& batch);
  void on_hello(Worker& worker, const v1::Hello& hello);
  void on_answer(Worker& worker, const v1::TaskToken& token, v1::WorkerMessage& message,
                 const std::string& field);
  void on_task_heartbeat(Worker& worker, const v1::TaskHeartbeat& heartbeat);
  Attempt* find_held(Worker& worker, const v1::TaskToken& token, const std::string& field,
                     bool release_if_fenced);
  void reject(Worker& worker, const v1::TaskToken* token, const std::string& field,
              const std::string& reason);
  void drop(Worker& worker, const grpc::Status& status, const std::string& why);
  void lose(Worker& worker, const std::string& why);
  void arm_liveness(Worker& worker);
  void arm_heartbeat(Attempt& attempt);
  void on_timeout(Attempt& attempt, const std::string& which, Duration limit);

  EventLoop& loop_;
  DispatcherOptions options_;
  WorkerId next_id_ = 1;
  std::map<WorkerId, std::unique_ptr<Worker>> workers_;
  std::map<std::string, KindQueue, std::less<>> queues_;
  TokenMap<Attempt*> live_;  // Assigned attempts by token.
};

}  // namespace taskwire::server
