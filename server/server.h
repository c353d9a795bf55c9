#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "core/event_loop.h"
#include "server/dispatcher.h"
#include "server/limits.h"

namespace taskwire::server {

struct ServerOptions {
  // host:port; port 0 picks a free one.
  std::string listen = "127.0.0.1:50051";
  Limits limits;
  // How tasks of kinds run by workers are dispatched.
  DispatcherOptions workers;
  // On stop(): how long calls in flight may take to finish before they are
  // cancelled.
  Duration drain_grace = std::chrono::seconds(10);
  std::uint64_t seed = 0;  // 0: from the system's entropy.
  // Where tasks are kept: empty for memory only, else a directory for the
  // durable SQLite store (created if missing; see sqlite_task_store.h).
  std::string data_dir;
  // host:port of the Prometheus /metrics endpoint (port 0: any free port);
  // empty for none, and then nothing is measured.
  std::string metrics_listen;
};

namespace metrics {
class ServerMetrics;
}

// taskwired in one object: the loop, the task manager, the gRPC server with
// the task, health and reflection services. run() serves on the calling
// thread (the loop thread) until stop() is called from any thread, then
// drains: health turns NOT_SERVING, new tasks are refused, calls in flight
// get the drain grace to finish, the rest are cancelled, and run() returns.
class Server {
 public:
  explicit Server(ServerOptions options) : options_(std::move(options)) {}
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves until stopped. Calls `on_listening` with the bound port once the
  // server accepts calls. Throws std::runtime_error if it cannot listen or
  // cannot open its task store (a StoreError naming the path and reason).
  void run(const std::function<void(int port)>& on_listening = {});
  // Thread-safe and idempotent: begins the graceful shutdown.
  void stop();
  // The bound port of the metrics endpoint, once `on_listening` is called;
  // 0 without one.
  int metrics_port() const noexcept { return metrics_port_; }

 private:
  Task<void> serve(class Drain& drain);
  // From the metrics endpoint's thread: the text, rendered on the loop, or
  // nullopt if the loop does not answer in time or is not running.
  std::optional<std::string> scrape(const metrics::ServerMetrics& metrics);

  ServerOptions options_;
  std::mutex mutex_;
  EventLoop* loop_ = nullptr;  // While run() runs; guarded by mutex_.
  bool stop_requested_ = false;
  std::function<void()> wake_;  // Sets the stop event on the loop.
  int metrics_port_ = 0;
};

}  // namespace taskwire::server
