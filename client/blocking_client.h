#pragma once

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "core/event.h"
#include "core/event_loop.h"
#include "core/wait_for.h"

namespace taskwire::client {

class BlockingClient;

// A remote task seen from code without coroutines, as
// concurrent.futures.Future: result() blocks until it is done.
class BlockingTask {
 public:
  // The server's id (waits for the creation call if need be).
  std::string id() const;
  // Blocks until the task is done and gives its result, or throws what
  // awaiting it throws; throws TimeoutError once `timeout` passes (the
  // task keeps running).
  Value result(std::optional<Duration> timeout = std::nullopt) const;
  // Asks the server to cancel the task.
  void cancel() const;

 private:
  friend class BlockingClient;
  BlockingTask(BlockingClient* owner, std::shared_ptr<RemoteTask> task)
      : owner_(owner), task_(std::move(task)) {}
  BlockingClient* owner_;
  std::shared_ptr<RemoteTask> task_;  // Touched on the loop thread only.
};

// The client library for code without coroutines: a Client on a loop of its
// own, on its own thread. Every call blocks the calling thread (not the
// loop) until its answer. Thread-safe. BlockingTasks must not outlive the
// BlockingClient that made them.
class BlockingClient {
 public:
  explicit BlockingClient(ClientOptions options);
  BlockingClient();
  BlockingClient(const BlockingClient&) = delete;
  BlockingClient& operator=(const BlockingClient&) = delete;
  ~BlockingClient();

  BlockingTask create_task(std::string kind, Value args);
  // asyncio.gather's blocking twin: the results in order, or the first
  // failure thrown. On timeout the tasks are cancelled (as
  // asyncio.wait_for(gather(...)) does) and TimeoutError is thrown.
  std::vector<Value> gather(const std::vector<BlockingTask>& tasks,
                            std::optional<Duration> timeout = std::nullopt);

  // Runs `make(client)` on the loop and waits for its value (at most
  // `timeout`; then the coroutine is cancelled and TimeoutError thrown).
  template <typename T, typename Make>
  T run(Make make, std::optional<Duration> timeout = std::nullopt);

 private:
  friend class BlockingTask;

  EventLoop loop_;
  std::unique_ptr<Client> client_;
  Event stop_;
  std::thread thread_;
};

template <typename T, typename Make>
T BlockingClient::run(Make make, std::optional<Duration> timeout) {
  auto promise = std::make_shared<std::promise<T>>();
  std::future<T> future = promise->get_future();
  auto body = [](Make make, Client& client, std::shared_ptr<std::promise<T>> promise,
                 std::optional<Duration> timeout) -> Task<void> {
    try {
      if constexpr (std::is_void_v<T>) {
        co_await wait_for(make(client), timeout);
        promise->set_value();
      } else {
        promise->set_value(co_await wait_for(make(client), timeout));
      }
    } catch (...) {
      promise->set_exception(std::current_exception());
    }
  };
  loop_.post([this, body, make = std::move(make), promise, timeout]() mutable {
    loop_.create_task(body(std::move(make), *client_, promise, timeout));
  });
  return future.get();
}

}  // namespace taskwire::client
