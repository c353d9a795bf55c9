#include "server/server.h"

#include <absl/synchronization/mutex.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <future>
#include <random>
#include <stdexcept>
#include <thread>

#include "core/event.h"
#include "core/wait_for.h"
#include "rpc/cq_poller.h"
#include "server/builtin_kinds.h"
#include "server/call_counter.h"
#include "server/health_service.h"
#include "server/memory_task_store.h"
#include "server/metrics/metrics_endpoint.h"
#include "server/metrics/server_metrics.h"
#include "server/sqlite_task_store.h"
#include "server/task_log.h"
#include "server/task_manager.h"
#include "server/task_service.h"
#include "server/worker_kind.h"
#include "server/worker_service.h"

namespace taskwire::server {
namespace {

constexpr int kMaxMessageBytes = 64 * 1024 * 1024;  // CreateTasks of 100,000 tasks fits.
// How long the calls stopped at the end of the drain grace get to answer.
constexpr Duration kStoppedCallsWait = std::chrono::seconds(1);
// How long a scrape waits for the loop to render the metrics (it takes
// microseconds unless the loop is stuck, which the 503 then shows).
constexpr auto kScrapeTimeout = std::chrono::seconds(2);

}  // namespace

// What the loop's main coroutine needs to shut the server down.
class Drain {
 public:
  Event stop_requested;
  grpc::Server* server = nullptr;
  rpc::CqPoller* poller = nullptr;
  HealthService* health = nullptr;
  TaskManager* manager = nullptr;
  CallCounter* calls = nullptr;
  LiveCalls* live = nullptr;
};

void Server::run(const std::function<void(int port)>& on_listening) {
  // Debian builds Abseil with absl::Mutex's deadlock detection on; gRPC's
  // locks then keep a lock graph on every acquisition (a few percent of the
  // server's CPU in profiles, and reported as races by TSan, since the
  // library is not instrumented).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::uint64_t seed = options_.seed != 0 ? options_.seed : std::random_device{}();
  EventLoop loop;
  // A task's failure is part of its record; the loop need not log it again.
  loop.set_exception_handler([](const std::string& message, std::exception_ptr error) {
    spdlog::debug("{}: {}", message, describe(error));
  });
  KindRegistry kinds;
  add_builtin_kinds(kinds, seed);
  Dispatcher dispatcher(loop, options_.workers);
  WorkerKinds worker_kinds(dispatcher, kinds);
  kinds.set_fallback(&worker_kinds);
  // Opened before anything listens: a store that cannot be used stops the
  // server here rather than letting it start empty.
  std::unique_ptr<TaskStore> store;
  if (options_.data_dir.empty()) {
    store = std::make_unique<MemoryTaskStore>();
  } else {
    try {
      store = std::make_unique<SqliteTaskStore>(loop, options_.data_dir);
    } catch (const StoreError& e) {
      throw std::runtime_error(std::string("cannot open the task store: ") + e.what());
    }
  }
  TaskManager manager(loop, kinds, *store, options_.limits, seed);
  CallCounter calls;
  LiveCalls live;
  TaskService service(loop, manager, calls, live);
  // Per-task debug lines cost a little per task: only when they are logged.
  TaskLog task_log;
  if (spdlog::should_log(spdlog::level::debug)) manager.add_observer(&task_log);
  std::unique_ptr<metrics::ServerMetrics> metrics;
  std::unique_ptr<metrics::MetricsEndpoint> metrics_endpoint;
  if (!options_.metrics_listen.empty()) {
    metrics = std::make_unique<metrics::ServerMetrics>(dispatcher);
    manager.add_observer(&metrics->tasks());
    service.set_metrics(metrics.get());
    // Bound before gRPC starts, so that a port in use fails the start cleanly.
    metrics_endpoint = std::make_unique<metrics::MetricsEndpoint>(
        options_.metrics_listen, [this, m = metrics.get()] { return scrape(*m); });
    metrics_port_ = metrics_endpoint->port();
  }
  // After the observers are in place, so that they count what is taken over.
  if (store->size() != 0) {
    TaskManager::Recovered recovered = manager.recover();
    spdlog::info("recovered {} tasks: {} finished, {} pending again, {} running again",
                 recovered.finished + recovered.pending + recovered.running, recovered.finished,
                 recovered.pending, recovered.running);
  }
  HealthService health(loop, live);
  WorkerService worker_service(loop, dispatcher, live);

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options_.listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(service.service());
  builder.RegisterService(health.service());
  builder.RegisterService(worker_service.service());
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  std::unique_ptr<grpc::ServerCompletionQueue> queue = builder.AddCompletionQueue();
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) throw std::runtime_error("cannot listen on " + options_.listen);
  rpc::CqPoller poller(*queue);
  loop.set_poller(&poller);
  service.listen(*queue);
  health.listen(*queue);
  worker_service.listen(*queue, poller);
  health.set_serving(true);

  Drain drain;
  drain.server = server.get();
  drain.poller = &poller;
  drain.health = &health;
  drain.manager = &manager;
  drain.calls = &calls;
  drain.live = &live;
  {
    std::lock_guard lock(mutex_);
    loop_ = &loop;
    wake_ = [&drain] { drain.stop_requested.set(); };
    if (stop_requested_) loop.post(wake_);
  }
  spdlog::info("taskwired listening on {} (port {}); store: {}; kinds: {}", options_.listen, port,
               store->describe(), kinds.names());
  if (metrics_endpoint) {
    spdlog::info("metrics on {} (port {}): GET /metrics", options_.metrics_listen,
                 metrics_endpoint->port());
  }
  if (on_listening) on_listening(port);

  loop.run(serve(drain));
  {
    std::lock_guard lock(mutex_);
    loop_ = nullptr;
  }
  if (metrics_endpoint) metrics_endpoint->stop();  // Before the loop and the metrics go.
  server->Wait();
  spdlog::info("taskwired stopped");
}

Task<void> Server::serve(Drain& drain) {
  co_await drain.stop_requested.wait();
  spdlog::info("stopping: refusing new tasks, giving {} call(s) in flight up to {:.3g} s",
               drain.calls->active(), to_seconds(options_.drain_grace));
  drain.health->set_serving(false);
  drain.manager->stop_accepting();
  // Calls keep being answered while the ones in flight finish: new tasks
  // are refused with UNAVAILABLE, reads and awaits still work.
  bool timed_out = false;
  try {
    co_await wait_for(drain.calls->wait_idle(), options_.drain_grace);
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  if (timed_out) {
    spdlog::info("drain grace over: cancelling {} call(s)", drain.calls->active());
    // Each answers UNAVAILABLE saying why, before gRPC cancels what is left
    // (all the same, past a short wait: a call must not hold up the exit).
    drain.calls->stop_all();
    bool stuck = false;
    try {
      co_await wait_for(drain.calls->wait_idle(), kStoppedCallsWait);
    } catch (const TimeoutError&) {
      stuck = true;
    }
    if (stuck) spdlog::warn("{} call(s) did not stop; gRPC cancels them", drain.calls->active());
  }
  // grpc::Server::Shutdown cancels what is left and waits for it, and the
  // calls finish on this loop: wait for it on another thread.
  Event stopped;
  EventLoop& loop = *EventLoop::current();
  std::thread shutdown([&] {
    drain.server->Shutdown(std::chrono::system_clock::now());
    loop.post([&] { stopped.set(); });
  });
  co_await stopped.wait();
  shutdown.join();
  // The calls that were cancelled finish, and the calls asked for come back
  // unanswered; then nothing can start another operation on the queue.
  co_await drain.live->none_left();
  drain.poller->shutdown();
  co_await drain.poller->drained.wait();
  loop.set_poller(nullptr);
  // What is still running stops with the loop; a durable store keeps it for
  // the next start.
  drain.manager->leave_unfinished();
  spdlog::info("drained; {} unfinished task(s) stop here{}", drain.manager->unfinished_count(),
               options_.data_dir.empty() ? " (in-memory store: they are lost)"
                                         : " and run again at the next start");
}

std::optional<std::string> Server::scrape(const metrics::ServerMetrics& metrics) {
  auto promise = std::make_shared<std::promise<std::string>>();
  std::future<std::string> text = promise->get_future();
  {
    std::lock_guard lock(mutex_);
    if (loop_ == nullptr) return std::nullopt;
    loop_->post([promise, &metrics] {
      try {
        promise->set_value(metrics.render());
      } catch (...) {
        promise->set_exception(std::current_exception());
      }
    });
  }
  if (text.wait_for(kScrapeTimeout) != std::future_status::ready) return std::nullopt;
  try {
    return text.get();
  } catch (const std::exception& e) {
    // A loop torn down with the render queued breaks the promise.
    spdlog::warn("metrics: {}", e.what());
    return std::nullopt;
  }
}

void Server::stop() {
  std::lock_guard lock(mutex_);
  if (stop_requested_) return;
  stop_requested_ = true;
  if (loop_ != nullptr) loop_->post(wake_);
}

}  // namespace taskwire::server
