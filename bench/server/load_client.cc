// Closed-loop unary load on gRPC's async completion-queue client API: keeps
// N calls in flight for a warm-up and then a measured window, and prints one
// JSON line: completed calls per second in the window and latency quantiles.
// The same code path drives either RPC:
//
//   --rpc echo      taskwire.bench.v1.EchoService/Echo, data = --payload
//   --rpc runtask   taskwire.v1.TaskService/RunTask, kind "echo",
//                   args {"value": --payload}; each answer is checked to be
//                   done, SUCCEEDED, with the value echoed.
//   --rpc createtask  taskwire.v1.TaskService/CreateTask, kind "echo", args
//                   as runtask's: task creation alone (the call answers
//                   once the task is created, and committed by a durable
//                   store); each answer is checked to carry an id.
//
//   load_client --target 127.0.0.1:PORT --rpc echo --in-flight 64
//               [--duration 5] [--warmup 1] [--threads 1] [--payload x]
//               [--label NAME] [--server-pid PID] [--view outcome|full]
//
// With --server-pid, the server's CPU time (utime + stime from /proc) over
// the measured window is reported too, as is the client's own.
//
// With --threads T, each thread has its own completion queue and keeps its
// share of the calls in flight, over one shared channel (one connection).
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "bench/proc_stats.h"
#include "echo.grpc.pb.h"
#include "taskwire/v1/tasks.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace ev1 = taskwire::bench::v1;
namespace tv1 = taskwire::v1;

constexpr auto kCallDeadline = std::chrono::seconds(30);

// One slot of the closed loop: starts a call, then checks its answer.
class Rpc {
 public:
  virtual ~Rpc() = default;
  virtual void start(grpc::CompletionQueue* cq, void* tag) = 0;
  virtual bool succeeded() const = 0;
};

class EchoRpc final : public Rpc {
 public:
  EchoRpc(ev1::EchoService::Stub& stub, const ev1::EchoMessage& request)
      : stub_(stub), request_(request) {}
  void start(grpc::CompletionQueue* cq, void* tag) override {
    context_ = std::make_unique<grpc::ClientContext>();
    context_->set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    reader_ = stub_.AsyncEcho(context_.get(), request_, cq);
    reader_->Finish(&response_, &status_, tag);
  }
  bool succeeded() const override { return status_.ok() && response_.data() == request_.data(); }

 private:
  ev1::EchoService::Stub& stub_;
  const ev1::EchoMessage& request_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<ev1::EchoMessage>> reader_;
  ev1::EchoMessage response_;
  grpc::Status status_;
};

class RunTaskRpc final : public Rpc {
 public:
  RunTaskRpc(tv1::TaskService::Stub& stub, const tv1::RunTaskRequest& request,
             const std::string& value)
      : stub_(stub), request_(request), value_(value) {}
  void start(grpc::CompletionQueue* cq, void* tag) override {
    context_ = std::make_unique<grpc::ClientContext>();
    context_->set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    reader_ = stub_.AsyncRunTask(context_.get(), request_, cq);
    reader_->Finish(&response_, &status_, tag);
  }
  bool succeeded() const override {
    return status_.ok() && response_.done() &&
           response_.task().state() == tv1::TASK_STATE_SUCCEEDED &&
           response_.task().result().string_value() == value_;
  }

 private:
  tv1::TaskService::Stub& stub_;
  const tv1::RunTaskRequest& request_;
  const std::string& value_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<tv1::AwaitTaskResponse>> reader_;
  tv1::AwaitTaskResponse response_;
  grpc::Status status_;
};

class CreateTaskRpc final : public Rpc {
 public:
  CreateTaskRpc(tv1::TaskService::Stub& stub, const tv1::CreateTaskRequest& request)
      : stub_(stub), request_(request) {}
  void start(grpc::CompletionQueue* cq, void* tag) override {
    context_ = std::make_unique<grpc::ClientContext>();
    context_->set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    reader_ = stub_.AsyncCreateTask(context_.get(), request_, cq);
    reader_->Finish(&response_, &status_, tag);
  }
  bool succeeded() const override {
    return status_.ok() && !response_.id().empty() &&
           response_.state() != tv1::TASK_STATE_UNSPECIFIED;
  }

 private:
  tv1::TaskService::Stub& stub_;
  const tv1::CreateTaskRequest& request_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<tv1::Task>> reader_;
  tv1::Task response_;
  grpc::Status status_;
};

struct ThreadResult {
  std::vector<std::int64_t> latencies_ns;  // Calls that succeeded in the window.
  std::int64_t errors_in_window = 0;
  std::int64_t calls_total = 0;
  std::int64_t errors_total = 0;
};

void drive(const std::function<std::unique_ptr<Rpc>()>& make, int in_flight,
           Clock::time_point measure_start, Clock::time_point measure_end, ThreadResult& out) {
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Rpc>> slots;
  std::vector<Clock::time_point> started(in_flight);
  for (int i = 0; i < in_flight; ++i) slots.push_back(make());
  for (int i = 0; i < in_flight; ++i) {
    started[i] = Clock::now();
    slots[i]->start(&cq, reinterpret_cast<void*>(static_cast<std::intptr_t>(i + 1)));
  }
  int active = in_flight;
  void* tag = nullptr;
  bool ok = false;
  while (active > 0 && cq.Next(&tag, &ok)) {
    const Clock::time_point now = Clock::now();
    const auto i = static_cast<std::size_t>(reinterpret_cast<std::intptr_t>(tag) - 1);
    const bool good = ok && slots[i]->succeeded();
    ++out.calls_total;
    if (!good) ++out.errors_total;
    if (now >= measure_start && now < measure_end) {
      if (good) {
        out.latencies_ns.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - started[i]).count());
      } else {
        ++out.errors_in_window;
      }
    }
    if (now < measure_end) {
      started[i] = now;
      slots[i]->start(&cq, tag);
    } else {
      --active;
    }
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

using taskwire::bench::process_cpu_seconds;

using taskwire::bench::quantile;

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto s = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return s(usage.ru_utime) + s(usage.ru_stime);
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"Closed-loop unary load on gRPC's async CQ client API"};
  std::string target;
  std::string rpc = "echo";
  int in_flight = 1;
  double duration = 5.0;
  double warmup = 1.0;
  int threads = 1;
  std::string payload = "x";
  std::string label;
  long server_pid = 0;
  std::string view = "outcome";
  app.option_defaults()->always_capture_default();
  app.add_option("--target", target, "host:port")->required();
  app.add_option("--rpc", rpc, "echo, runtask or createtask")
      ->check(CLI::IsMember({"echo", "runtask", "createtask"}));
  app.add_option("--in-flight", in_flight, "Calls kept in flight")->check(CLI::PositiveNumber);
  app.add_option("--duration", duration, "Measured seconds")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "Seconds before the measured window")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--threads", threads, "Client threads, one CQ each")->check(CLI::PositiveNumber);
  app.add_option("--payload", payload, "Echoed bytes / RunTask args.value");
  app.add_option("--label", label, "Name in the output (default: the rpc)");
  app.add_option("--server-pid", server_pid, "Also report this process's CPU time");
  app.add_option("--view", view, "RunTask's answer: the task's outcome or all of it")
      ->check(CLI::IsMember({"outcome", "full"}));
  CLI11_PARSE(app, argc, argv);
  if (label.empty()) label = rpc;
  if (in_flight < threads) throw std::runtime_error("need --in-flight >= --threads");

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10)))
    throw std::runtime_error("cannot connect to " + target);
  auto echo_stub = ev1::EchoService::NewStub(channel);
  auto task_stub = tv1::TaskService::NewStub(channel);

  ev1::EchoMessage echo_request;
  echo_request.set_data(payload);
  tv1::RunTaskRequest run_request;
  run_request.mutable_task()->set_kind("echo");
  run_request.set_view(view == "full" ? tv1::TASK_VIEW_FULL : tv1::TASK_VIEW_OUTCOME);
  (*run_request.mutable_task()->mutable_args()->mutable_struct_value()->mutable_fields())["value"]
      .set_string_value(payload);

  std::function<std::unique_ptr<Rpc>()> make;
  if (rpc == "echo") {
    make = [&] { return std::make_unique<EchoRpc>(*echo_stub, echo_request); };
  } else if (rpc == "runtask") {
    make = [&] { return std::make_unique<RunTaskRpc>(*task_stub, run_request, payload); };
  } else {
    make = [&] { return std::make_unique<CreateTaskRpc>(*task_stub, run_request.task()); };
  }

  const double cpu_before = cpu_seconds();
  const Clock::time_point begin = Clock::now();
  const auto measure_start =
      begin + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup));
  const auto measure_end = measure_start + std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(duration));
  std::vector<ThreadResult> results(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    int share = in_flight / threads + (t < in_flight % threads ? 1 : 0);
    workers.emplace_back(drive, std::cref(make), share, measure_start, measure_end,
                         std::ref(results[t]));
  }
  // CPU time of both sides over the measured window, read at its edges.
  double server_cpu = -1, client_cpu = -1;
  std::thread monitor([&] {
    std::this_thread::sleep_until(measure_start);
    double s0 = server_pid > 0 ? process_cpu_seconds(server_pid) : 0, c0 = cpu_seconds();
    std::this_thread::sleep_until(measure_end);
    double s1 = server_pid > 0 ? process_cpu_seconds(server_pid) : 0, c1 = cpu_seconds();
    if (server_pid > 0) server_cpu = s1 - s0;
    client_cpu = c1 - c0;
  });
  for (auto& w : workers) w.join();
  monitor.join();
  const double cpu_used = cpu_seconds() - cpu_before;
  const double wall = std::chrono::duration<double>(Clock::now() - begin).count();

  std::vector<std::int64_t> latencies;
  std::int64_t errors_in_window = 0, calls_total = 0, errors_total = 0;
  for (auto& r : results) {
    latencies.insert(latencies.end(), r.latencies_ns.begin(), r.latencies_ns.end());
    errors_in_window += r.errors_in_window;
    calls_total += r.calls_total;
    errors_total += r.errors_total;
  }
  std::sort(latencies.begin(), latencies.end());
  auto us = [](std::int64_t ns) { return static_cast<double>(ns) / 1e3; };
  std::printf(
      "{\"label\": \"%s\", \"rpc\": \"%s\", \"in_flight\": %d, \"threads\": %d, "
      "\"duration_s\": %.3f, \"requests\": %zu, \"rps\": %.1f, \"p50_us\": %.1f, "
      "\"p90_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, \"errors_in_window\": %lld, "
      "\"calls_total\": %lld, \"errors_total\": %lld, \"client_cpu_s\": %.3f, "
      "\"client_wall_s\": %.3f, \"window_client_cpu_s\": %.3f, "
      "\"window_server_cpu_s\": %.3f}\n",
      label.c_str(), rpc.c_str(), in_flight, threads, duration, latencies.size(),
      static_cast<double>(latencies.size()) / duration, us(quantile(latencies, 0.50)),
      us(quantile(latencies, 0.90)), us(quantile(latencies, 0.99)),
      latencies.empty() ? 0.0 : us(latencies.back()), static_cast<long long>(errors_in_window),
      static_cast<long long>(calls_total), static_cast<long long>(errors_total), cpu_used, wall,
      client_cpu, server_cpu);
  return errors_total == 0 ? 0 : 3;
} catch (const std::exception& e) {
  std::fprintf(stderr, "load_client: %s\n", e.what());
  return 2;
}
