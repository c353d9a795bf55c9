// worker_bench: no-op tasks through one worker connection (64 credits)
// against the built-in echo kind, in one process and one run:
//
//   throughput  N tasks created at once through the client library (one
//               CreateTasks call per loop pass, completions on one stream),
//               all awaited; tasks per second.
//   latency     RunTask one at a time; the worker's added round trip is the
//               difference of the medians.
//
// Usage: worker_bench [tasks (default 20000)] [latency samples (2000)]
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/worker.h"
#include "core/event_loop.h"
#include "server/server.h"

namespace {

using namespace taskwire;
using Clock = std::chrono::steady_clock;
using client::Value;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Value small_args() {
  Value args;
  (*args.mutable_struct_value()->mutable_fields())["value"].set_number_value(1);
  return args;
}

Task<double> throughput(client::Client& tw, std::string kind, int n) {
  std::vector<client::RemoteTask> tasks;
  tasks.reserve(n);
  auto start = Clock::now();
  for (int i = 0; i < n; ++i) tasks.push_back(tw.create_task(kind, small_args()));
  for (auto& task : tasks) co_await task;
  co_return n / seconds_since(start);
}

Task<std::vector<double>> latencies(client::Client& tw, std::string kind, int n) {
  std::vector<double> micros;
  micros.reserve(n);
  for (int i = 0; i < n; ++i) {
    auto start = Clock::now();
    co_await tw.run(kind, small_args());
    micros.push_back(seconds_since(start) * 1e6);
  }
  std::sort(micros.begin(), micros.end());
  co_return micros;
}

double percentile(const std::vector<double>& sorted, double p) {
  return sorted[static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1))];
}

struct Figures {
  double echo_rate = 0, worker_rate = 0;
  std::vector<double> echo_latency, worker_latency;
};

Task<void> measure(client::Client& tw, int n, int samples, Figures& out) {
  // Warm up both paths (connections, allocators, the worker's stream).
  co_await throughput(tw, "echo", 2000);
  co_await throughput(tw, "noop", 2000);
  std::vector<double> echo, worker;
  for (int round = 0; round < 3; ++round) {
    echo.push_back(co_await throughput(tw, "echo", n));
    worker.push_back(co_await throughput(tw, "noop", n));
  }
  std::sort(echo.begin(), echo.end());
  std::sort(worker.begin(), worker.end());
  out.echo_rate = echo[1];
  out.worker_rate = worker[1];
  out.echo_latency = co_await latencies(tw, "echo", samples);
  out.worker_latency = co_await latencies(tw, "noop", samples);
}

Task<void> serve_worker(client::Worker& worker, std::promise<void>& connected) {
  TaskHandle<void> running = EventLoop::current()->create_task(worker.run());
  co_await worker.connected().wait();
  connected.set_value();
  co_await running;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int samples = argc > 2 ? std::atoi(argv[2]) : 2000;
  spdlog::set_level(spdlog::level::warn);

  server::ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.drain_grace = std::chrono::seconds(1);
  server::Server server(options);
  std::promise<int> port;
  std::thread server_thread([&] { server.run([&](int bound) { port.set_value(bound); }); });
  const std::string target = "127.0.0.1:" + std::to_string(port.get_future().get());

  EventLoop worker_loop;
  client::WorkerOptions worker_options;
  worker_options.target = target;
  worker_options.credits = 64;
  worker_options.identity = "bench";
  client::Worker worker(worker_loop, worker_options);
  worker.handle(
      "noop", [](const Value& args, client::WorkerTaskContext&) -> Task<Value> { co_return args; });
  std::promise<void> connected;
  std::thread worker_thread([&] { worker_loop.run(serve_worker(worker, connected)); });
  connected.get_future().wait();

  Figures figures;
  {
    EventLoop loop;
    client::ClientOptions client_options;
    client_options.target = target;
    client::Client tw(loop, client_options);
    loop.run(measure(tw, n, samples, figures));
  }
  worker.stop();
  worker_thread.join();
  server.stop();
  server_thread.join();

  std::printf("%-44s %12s\n", "measure", "value");
  std::printf("%-44s %12.0f\n", "echo (built in), tasks/s", figures.echo_rate);
  std::printf("%-44s %12.0f\n", "noop on 1 worker, 64 credits, tasks/s", figures.worker_rate);
  std::printf("%-44s %12.2f\n", "worker / echo throughput",
              figures.worker_rate / figures.echo_rate);
  std::printf("%-44s %12.1f\n", "RunTask echo p50, us", percentile(figures.echo_latency, 0.5));
  std::printf("%-44s %12.1f\n", "RunTask echo p99, us", percentile(figures.echo_latency, 0.99));
  std::printf("%-44s %12.1f\n", "RunTask noop (worker) p50, us",
              percentile(figures.worker_latency, 0.5));
  std::printf("%-44s %12.1f\n", "RunTask noop (worker) p99, us",
              percentile(figures.worker_latency, 0.99));
  std::printf("%-44s %12.1f\n", "worker round trip added, p50, us",
              percentile(figures.worker_latency, 0.5) - percentile(figures.echo_latency, 0.5));
  return 0;
}
