// worker_bench: no-op tasks through one worker connection (64 credits)
// against the built-in echo kind, in one run:
//
//   throughput  N tasks created at once through the client library (one
//               CreateTasks call per loop pass, completions on one stream),
//               all awaited; tasks per second.
//   RunTask     64 callers each looping on RunTask, for each kind; calls
//               per second.
//   latency     RunTask one at a time, echo and noop in turn; the worker's
//               added round trip is the difference of the medians.
//   CPU         per task, of each process, in the throughput rounds and
//               in runs of one task at a time of each kind.
//   cancel      CancelTask on a task whose handler is waiting, one at a
//               time: from the call to the handler seeing CancelledError
//               (the worker notes the moment on the host's monotonic
//               clock, which every process shares, in a file).
//
// `processes` (the default) runs the server, the worker and the client in
// three processes, as in production (this binary started again with
// --serve and --serve-worker); `threads` runs them on three threads of
// this process, where gRPC's threads and pollers are shared.
//
// Usage: worker_bench [tasks (20000)] [latency samples (2000)] [processes|threads]
//                     [cancellations (200)]
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/child_process.h"
#include "bench/proc_stats.h"
#include "client/client.h"
#include "client/worker.h"
#include "core/errors.h"
#include "core/event_loop.h"
#include "core/sleep.h"
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

// Callers each looping on RunTask (create and await in one call) until
// `left` runs out.
Task<void> run_task_loop(client::Client& tw, const std::string& kind, int& left) {
  while (left > 0) {
    --left;
    Value args = small_args();
    co_await tw.run(kind, args);
  }
}

// RunTask with 64 calls in flight (the worker's credits), calls per second.
Task<double> run_task_throughput(client::Client& tw, const std::string& kind, int n) {
  constexpr int kInFlight = 64;
  int left = n;
  std::vector<TaskHandle<void>> callers;
  auto start = Clock::now();
  for (int i = 0; i < kInFlight; ++i)
    callers.push_back(EventLoop::current()->create_task(run_task_loop(tw, kind, left)));
  for (auto& caller : callers) co_await caller;
  co_return n / seconds_since(start);
}

Task<double> one_run_micros(client::Client& tw, const std::string& kind) {
  auto start = Clock::now();
  co_await tw.run(kind, small_args());
  co_return seconds_since(start) * 1e6;
}

// RunTask one at a time, alternating the two kinds, so that whatever else
// the machine does in these seconds weighs on both alike.
Task<void> latencies(client::Client& tw, int n, std::vector<double>& echo,
                     std::vector<double>& worker) {
  echo.reserve(n), worker.reserve(n);
  for (int i = 0; i < n; ++i) {
    echo.push_back(co_await one_run_micros(tw, "echo"));
    worker.push_back(co_await one_run_micros(tw, "noop"));
  }
  std::sort(echo.begin(), echo.end());
  std::sort(worker.begin(), worker.end());
}

Task<void> run_sequentially(client::Client& tw, const std::string& kind, int n) {
  for (int i = 0; i < n; ++i) co_await tw.run(kind, small_args());
}

// The moments the worker's handlers saw CancelledError, in order.
std::vector<std::int64_t> cancellations_seen(const std::string& file) {
  std::vector<std::int64_t> seen;
  std::ifstream in(file);
  for (std::int64_t nanos; in >> nanos;) seen.push_back(nanos);
  return seen;
}

// Each task of the `hold` kind is cancelled once its handler waits (its
// heartbeat shows as the task's progress).
Task<std::vector<double>> cancel_latencies(client::Client& tw, int n,
                                           const std::string& seen_file) {
  std::vector<double> micros;
  for (int i = 0; i < n; ++i) {
    client::RemoteTask task = tw.create_task("hold");
    std::string id = co_await task.created_id();
    while (!(co_await tw.get(id)).has_progress()) co_await sleep(std::chrono::milliseconds(1));
    auto asked = Clock::now();
    co_await tw.cancel(id);
    std::vector<std::int64_t> seen;
    while ((seen = cancellations_seen(seen_file)).size() <= static_cast<std::size_t>(i))
      co_await sleep(std::chrono::microseconds(100));
    micros.push_back(static_cast<double>(seen[i] - asked.time_since_epoch().count()) / 1e3);
    try {
      co_await task;
    } catch (const CancelledError&) {
    }
  }
  std::sort(micros.begin(), micros.end());
  co_return micros;
}

double percentile(const std::vector<double>& sorted, double p) {
  return sorted[static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1))];
}

// CPU seconds used so far by the server, the worker and the client (each
// process's own; in the threads layout, the one process's under "client").
struct Cpu {
  double server = 0, worker = 0, client = 0;
  Cpu operator-(const Cpu& o) const {
    return {server - o.server, worker - o.worker, client - o.client};
  }
  Cpu& operator+=(const Cpu& o) {
    server += o.server, worker += o.worker, client += o.client;
    return *this;
  }
};

struct Figures {
  double echo_rate = 0, worker_rate = 0;
  // RunTask calls per second, 64 in flight.
  double echo_run_task_rate = 0, worker_run_task_rate = 0;
  std::vector<double> echo_latency, worker_latency;
  // CPU per task over the throughput rounds, in microseconds.
  Cpu echo_cpu, worker_cpu;
  // CPU per task over the latency runs (one task at a time), in microseconds.
  Cpu echo_sequential_cpu, worker_sequential_cpu;
  // CancelTask -> the handler sees CancelledError, microseconds.
  std::vector<double> cancel_latency;
};

Cpu per_task_micros(const Cpu& total, int tasks) {
  const double scale = 1e6 / tasks;
  return {total.server * scale, total.worker * scale, total.client * scale};
}

Task<void> measure(client::Client& tw, int n, int samples, int cancellations,
                   const std::string& seen_file, const std::function<Cpu()>& cpu, Figures& out) {
  // Warm up both paths (connections, allocators, the worker's stream).
  co_await throughput(tw, "echo", 2000);
  co_await throughput(tw, "noop", 2000);
  std::vector<double> echo, worker;
  Cpu echo_cpu, worker_cpu;
  for (int round = 0; round < 3; ++round) {
    Cpu before = cpu();
    echo.push_back(co_await throughput(tw, "echo", n));
    Cpu middle = cpu();
    worker.push_back(co_await throughput(tw, "noop", n));
    worker_cpu += cpu() - middle;
    echo_cpu += middle - before;
  }
  out.echo_cpu = per_task_micros(echo_cpu, 3 * n);
  out.worker_cpu = per_task_micros(worker_cpu, 3 * n);
  std::sort(echo.begin(), echo.end());
  std::sort(worker.begin(), worker.end());
  out.echo_rate = echo[1];
  out.worker_rate = worker[1];
  out.echo_run_task_rate = co_await run_task_throughput(tw, "echo", n / 2);
  out.worker_run_task_rate = co_await run_task_throughput(tw, "noop", n / 2);
  co_await latencies(tw, samples, out.echo_latency, out.worker_latency);
  // CPU per task one at a time, each kind on its own.
  Cpu before = cpu();
  co_await run_sequentially(tw, "echo", samples);
  Cpu middle = cpu();
  co_await run_sequentially(tw, "noop", samples);
  out.echo_sequential_cpu = per_task_micros(middle - before, samples);
  out.worker_sequential_cpu = per_task_micros(cpu() - middle, samples);
  out.cancel_latency = co_await cancel_latencies(tw, cancellations, seen_file);
}

Task<void> serve_worker(client::Worker& worker, const std::function<void()>& connected) {
  TaskHandle<void> running = EventLoop::current()->create_task(worker.run());
  co_await worker.connected().wait();
  connected();
  co_await running;
}

client::WorkerOptions worker_options(const std::string& target) {
  client::WorkerOptions options;
  options.target = target;
  options.credits = 64;
  options.identity = "bench";
  return options;
}

// What the built-in echo does: the result is args.value.
void add_noop(client::Worker& worker) {
  worker.handle("noop", [](const Value& args, client::WorkerTaskContext&) -> Task<Value> {
    co_return args.struct_value().fields().at("value");
  });
}

// Runs until cancelled; appends the moment it sees CancelledError
// (nanoseconds on the steady clock) to `seen_file`.
void add_hold(client::Worker& worker, const std::string& seen_file) {
  worker.handle("hold",
                [seen_file](const Value&, client::WorkerTaskContext& context) -> Task<Value> {
                  Value waiting;
                  waiting.set_string_value("waiting");
                  context.heartbeat(waiting);
                  bool cancelled = false;
                  try {
                    co_await sleep(std::chrono::hours(1));
                  } catch (const CancelledError&) {
                    cancelled = true;
                  }
                  if (cancelled) {
                    auto now = Clock::now().time_since_epoch().count();
                    std::ofstream(seen_file, std::ios::app) << now << "\n";
                    throw CancelledError();
                  }
                  co_return Value();
                });
}

// Stops `stop` once this process's stdin closes (the parent went away or
// is done with us).
std::thread stop_at_end_of_input(std::function<void()> stop) {
  return std::thread([stop = std::move(stop)] {
    std::string ignored;
    while (std::getline(std::cin, ignored)) {
    }
    stop();
  });
}

// --serve-worker TARGET SEEN_FILE: the worker process. Says "connected"
// on stdout once welcomed.
int serve_worker_process(const std::string& target, const std::string& seen_file) {
  EventLoop loop;
  client::Worker worker(loop, worker_options(target));
  add_noop(worker);
  add_hold(worker, seen_file);
  std::thread stopper = stop_at_end_of_input([&] { worker.stop(); });
  loop.run(serve_worker(worker, [] { std::printf("connected\n"), std::fflush(stdout); }));
  stopper.join();
  return 0;
}

server::ServerOptions server_options() {
  server::ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.drain_grace = std::chrono::seconds(1);
  return options;
}

// --serve: the server process, as taskwired. Says its port on stdout.
int serve_process() {
  spdlog::set_level(spdlog::level::warn);
  server::Server server(server_options());
  std::thread stopper = stop_at_end_of_input([&] { server.stop(); });
  server.run([](int port) { std::printf("%d\n", port), std::fflush(stdout); });
  stopper.join();
  return 0;
}

// The worker on a thread of this process.
class WorkerThread {
 public:
  WorkerThread(const std::string& target, const std::string& seen_file)
      : worker_(loop_, worker_options(target)) {
    add_noop(worker_);
    add_hold(worker_, seen_file);
    std::promise<void> connected;
    thread_ = std::thread(
        [&] { loop_.run(serve_worker(worker_, [&connected] { connected.set_value(); })); });
    connected.get_future().wait();
  }
  ~WorkerThread() {
    worker_.stop();
    thread_.join();
  }

 private:
  EventLoop loop_;
  client::Worker worker_;
  std::thread thread_;
};

// The server on a thread of this process.
class ServerThread {
 public:
  ServerThread() : server_(server_options()) {
    std::promise<int> port;
    thread_ = std::thread([&] { server_.run([&](int bound) { port.set_value(bound); }); });
    port_ = port.get_future().get();
  }
  ~ServerThread() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }

 private:
  server::Server server_;
  std::thread thread_;
  int port_ = 0;
};

void print(const Figures& figures) {
  std::printf("%-44s %12s\n", "measure", "value");
  std::printf("%-44s %12.0f\n", "echo (built in), tasks/s", figures.echo_rate);
  std::printf("%-44s %12.0f\n", "noop on 1 worker, 64 credits, tasks/s", figures.worker_rate);
  std::printf("%-44s %12.2f\n", "worker / echo throughput",
              figures.worker_rate / figures.echo_rate);
  std::printf("%-44s %12.0f\n", "RunTask echo, 64 in flight, calls/s", figures.echo_run_task_rate);
  std::printf("%-44s %12.0f\n", "RunTask noop (worker), 64 in flight, calls/s",
              figures.worker_run_task_rate);
  std::printf("%-44s %12.2f\n", "worker / echo, RunTask 64 in flight",
              figures.worker_run_task_rate / figures.echo_run_task_rate);
  std::printf("%-44s %12.1f\n", "RunTask echo p50, us", percentile(figures.echo_latency, 0.5));
  std::printf("%-44s %12.1f\n", "RunTask echo p99, us", percentile(figures.echo_latency, 0.99));
  std::printf("%-44s %12.1f\n", "RunTask noop (worker) p50, us",
              percentile(figures.worker_latency, 0.5));
  std::printf("%-44s %12.1f\n", "RunTask noop (worker) p99, us",
              percentile(figures.worker_latency, 0.99));
  std::printf("%-44s %12.1f\n", "worker round trip added, p50, us",
              percentile(figures.worker_latency, 0.5) - percentile(figures.echo_latency, 0.5));
  std::printf("%-44s %5.1f / %4.1f / %4.1f\n", "CPU per echo task, us: server/worker/client",
              figures.echo_cpu.server, figures.echo_cpu.worker, figures.echo_cpu.client);
  std::printf("%-44s %5.1f / %4.1f / %4.1f\n", "CPU per noop task, us: server/worker/client",
              figures.worker_cpu.server, figures.worker_cpu.worker, figures.worker_cpu.client);
  std::printf("%-44s %5.1f / %4.1f / %4.1f\n", "CPU per sequential echo, us: server/worker/client",
              figures.echo_sequential_cpu.server, figures.echo_sequential_cpu.worker,
              figures.echo_sequential_cpu.client);
  std::printf("%-44s %5.1f / %4.1f / %4.1f\n", "CPU per sequential noop, us: server/worker/client",
              figures.worker_sequential_cpu.server, figures.worker_sequential_cpu.worker,
              figures.worker_sequential_cpu.client);
  if (!figures.cancel_latency.empty()) {
    std::printf("%-44s %12.1f\n", "CancelTask -> handler sees it, p50, us",
                percentile(figures.cancel_latency, 0.5));
    std::printf("%-44s %12.1f\n", "CancelTask -> handler sees it, p99, us",
                percentile(figures.cancel_latency, 0.99));
    std::printf("%-44s %12.1f\n", "CancelTask -> handler sees it, max, us",
                figures.cancel_latency.back());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--serve-worker")
    return serve_worker_process(argv[2], argv[3]);
  if (argc == 2 && std::string(argv[1]) == "--serve") return serve_process();
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int samples = argc > 2 ? std::atoi(argv[2]) : 2000;
  const std::string layout = argc > 3 ? argv[3] : "processes";
  const int cancellations = argc > 4 ? std::atoi(argv[4]) : 200;
  if (layout != "processes" && layout != "threads") {
    std::fprintf(stderr, "layout: 'processes' or 'threads', not '%s'\n", layout.c_str());
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);

  // Where the worker notes when its handlers saw CancelledError.
  char seen_path[] = "/tmp/worker_bench_cancelled_XXXXXX";
  int seen_fd = ::mkstemp(seen_path);
  if (seen_fd < 0) throw std::runtime_error("mkstemp");
  ::close(seen_fd);
  const std::string seen_file = seen_path;

  Figures figures;
  {
    std::unique_ptr<bench::ChildProcess> server_process, worker_process;
    std::unique_ptr<ServerThread> server_thread;
    std::unique_ptr<WorkerThread> worker_thread;
    std::string target;
    if (layout == "processes") {
      server_process = std::make_unique<bench::ChildProcess>(std::vector<std::string>{"--serve"});
      target = "127.0.0.1:" + server_process->first_line();
      worker_process = std::make_unique<bench::ChildProcess>(
          std::vector<std::string>{"--serve-worker", target, seen_file});
    } else {
      server_thread = std::make_unique<ServerThread>();
      target = "127.0.0.1:" + std::to_string(server_thread->port());
      worker_thread = std::make_unique<WorkerThread>(target, seen_file);
    }
    EventLoop loop;
    client::ClientOptions client_options;
    client_options.target = target;
    client::Client tw(loop, client_options);
    std::function<Cpu()> cpu = [&] {
      Cpu now;
      now.client = bench::process_cpu_seconds(::getpid());
      if (server_process) now.server = bench::process_cpu_seconds(server_process->pid());
      if (worker_process) now.worker = bench::process_cpu_seconds(worker_process->pid());
      return now;
    };
    loop.run(measure(tw, n, samples, cancellations, seen_file, cpu, figures));
    // The worker stops before the server.
    worker_thread.reset();
    worker_process.reset();
  }
  std::printf("layout: %s\n", layout == "processes"
                                  ? "server, worker and client in three processes"
                                  : "server, worker and client on three threads of one process");
  print(figures);
  ::unlink(seen_path);
  return 0;
}
