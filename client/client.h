#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/remote_task.h"
#include "core/event_loop.h"
#include "core/task.h"
#include "taskwire/v1/tasks.grpc.pb.h"

namespace taskwire::client {

struct ClientOptions {
  // host:port. Empty: $TASKWIRE_SERVER, else 127.0.0.1:50051.
  std::string target;
  // The deadline of each call that does not wait for tasks.
  Duration call_timeout = std::chrono::seconds(30);
  // Idempotent calls that fail with UNAVAILABLE are tried this many times in
  // all, waiting initial_backoff, then twice as long each time, up to
  // max_backoff.
  int max_attempts = 4;
  Duration initial_backoff = std::chrono::milliseconds(100);
  Duration max_backoff = std::chrono::seconds(2);
  // Tasks from create_task go to the server in CreateTasks calls of at most
  // this many; a batch that reaches it is sent at once.
  std::size_t max_batch = 10'000;
  // A burst of tasks (created while no CreateTasks call is in flight)
  // starts with a batch of this many, sent at once when full; each further
  // full batch of the burst is twice the one before, up to max_batch. A
  // loop creating 100,000 tasks then has the server creating after the
  // first 1,000 rather than the first 10,000. 0: max_batch from the first.
  std::size_t first_batch = 1'000;
  // Smaller batches wait while this many CreateTasks calls are in flight
  // and go in one call as soon as one answers (as Nagle's algorithm does for
  // bytes): an idle client sends a task at the end of the loop pass that
  // created it, and a busy one makes large batches, without a timer.
  int max_calls_in_flight = 1;
  grpc::ChannelArguments channel_arguments;
  // Null: an insecure channel. (TLS and tokens plug in here.)
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// Counters of what a client has sent, for benchmarks and tests.
struct ClientStats {
  std::uint64_t created_tasks = 0;   // Tasks sent in CreateTasks calls.
  std::uint64_t create_calls = 0;    // CreateTasks calls started (retries too).
  std::uint64_t follow_streams = 0;  // AsCompletedBatches (or AsCompleted) streams started.
};

struct TaskOptions {
  std::string name;
  std::map<std::string, std::string> labels;
  std::optional<Duration> timeout;
  // Empty: the client makes one, so that retried creations stay single.
  std::string idempotency_key;
};

// A connection to taskwired whose calls are awaited in the given loop's
// tasks. All methods are called on the loop thread; the loop must outlive
// the client's calls.
class Client {
 public:
  Client(EventLoop& loop, ClientOptions options);
  explicit Client(EventLoop& loop);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  const std::string& target() const noexcept;

  // asyncio.create_task over the wire: returns at once. The tasks created
  // meanwhile are sent together in one CreateTasks call (see
  // ClientOptions::max_calls_in_flight), and their completions come back on
  // one AsCompletedBatches stream (tasks that finish together in one
  // message), so a hundred thousand remote tasks cost a handful of calls.
  //
  // (Overloads, not default arguments: GCC 12 mishandles a defaulted class
  // argument in a call made inside a coroutine.)
  RemoteTask create_task(std::string kind, Value args, TaskOptions options);
  RemoteTask create_task(std::string kind, Value args);
  RemoteTask create_task(std::string kind);

  // CreateTask and await in one round trip (RunTask).
  Task<Value> run(std::string kind, Value args, TaskOptions options);
  Task<Value> run(std::string kind, Value args);
  Task<v1::Task> get(std::string id);
  // Cancels a task by id; answers with it once it has stopped.
  Task<v1::Task> cancel(std::string id);
  Task<v1::ListTasksResponse> list(v1::ListTasksRequest request);

  ClientStats stats() const noexcept;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// A google.protobuf.Value from JSON text; throws std::invalid_argument.
Value json_value(const std::string& json);
// A Value as compact JSON text.
std::string to_json(const Value& value);

}  // namespace taskwire::client
