// The client library's overhead: remote "echo" tasks created and awaited in a
// closed loop, N in flight, through the library or through raw generated
// stubs, against one taskwired. Prints one JSON line.
//
//   overhead_client --target 127.0.0.1:PORT --api library --in-flight 64
//                   [--duration 5] [--warmup 1] [--payload x] [--label NAME]
//                   [--server-pid PID] [--count-rpcs]
//
//   --api library      N coroutines on one EventLoop, each looping on
//                      `co_await client.create_task("echo", args)`.
//   --api raw-batched  the calls the library makes, on raw stubs (gRPC's async
//                      completion-queue API, one CQ, one thread): the slots
//                      freed while completions were ready are refilled with
//                      one CreateTasks, whose tasks are followed on one
//                      AsCompletedBatches stream.
//   --api raw          N slots on gRPC's async completion-queue API (one CQ,
//                      one thread, generated stubs), each looping on
//                      CreateTask, then AwaitTask of the id it got.
//   --api raw-runtask  the same with RunTask: one call per task.
//
// A task counts once its result has been checked (the payload echoed). CPU
// time of the client (getrusage, all threads) and of the server (/proc) is
// read at the edges of the measured window.
//
// --count-rpcs registers a global client interceptor that counts the calls
// started per method (it is not free, so the timed runs leave it off).
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_interceptor.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/proc_stats.h"
#include "client/client.h"
#include "core/event_loop.h"
#include "core/gather.h"
#include "taskwire/v1/tasks.grpc.pb.h"

namespace {

namespace v1 = taskwire::v1;
using Clock = std::chrono::steady_clock;
using taskwire::Task;
using taskwire::client::Value;

constexpr auto kCallDeadline = std::chrono::seconds(30);

using taskwire::bench::process_cpu_seconds;

double own_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto s = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return s(usage.ru_utime) + s(usage.ru_stime);
}

using taskwire::bench::quantile;

// Calls started per method, counted by a global client interceptor.
class RpcCounter {
 public:
  static RpcCounter& instance() {
    static RpcCounter counter;
    return counter;
  }
  void add(const std::string& method) {
    std::lock_guard lock(mutex_);
    ++counts_[method];
  }
  std::map<std::string, long long> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(counts_, {});
  }

 private:
  std::mutex mutex_;
  std::map<std::string, long long> counts_;
};

class CountingInterceptor final : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    methods->Proceed();
  }
};

class CountingFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override {
    std::string method = info->method();
    RpcCounter::instance().add(method.substr(method.rfind('/') + 1));
    return new CountingInterceptor;
  }
};

struct Window {
  Clock::time_point start;
  Clock::time_point end;
  bool contains(Clock::time_point t) const { return t >= start && t < end; }
};

struct Result {
  std::vector<std::int64_t> latencies_ns;  // Tasks finished in the window.
  long long tasks_total = 0;
  long long errors = 0;
  // Library only: passes of the loop in which tasks were created (each is
  // one CreateTasks call and one AsCompletedBatches stream; see client.cc).
  long long batches_in_window = 0;
  long long tasks_created_in_window = 0;
};

// ---- Through the library ----

struct LibraryRun {
  taskwire::EventLoop& loop;
  taskwire::client::Client& client;
  const Value& args;
  const std::string& payload;
  Window window;
  Result& result;
  // The client's own counters when the window opened and closed: the
  // CreateTasks calls it made and the tasks they carried, in the window.
  std::optional<taskwire::client::ClientStats> at_start{}, at_end{};

  void count_batches(Clock::time_point now) {
    if (!at_start && now >= window.start) at_start = client.stats();
    if (!at_end && now >= window.end) {
      at_end = client.stats();
      if (!at_start) at_start = at_end;
      result.batches_in_window =
          static_cast<long long>(at_end->create_calls - at_start->create_calls);
      result.tasks_created_in_window =
          static_cast<long long>(at_end->created_tasks - at_start->created_tasks);
    }
  }

  Task<void> worker() {
    for (;;) {
      Clock::time_point started = Clock::now();
      count_batches(started);
      if (started >= window.end) co_return;
      Value value = co_await client.create_task("echo", args);
      Clock::time_point now = Clock::now();
      bool good = value.string_value() == payload;
      ++result.tasks_total;
      if (!good) ++result.errors;
      if (good && window.contains(now))
        result.latencies_ns.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - started).count());
    }
  }

  Task<void> main(int in_flight) {
    std::vector<taskwire::TaskHandle<void>> workers;
    for (int i = 0; i < in_flight; ++i) workers.push_back(loop.create_task(worker()));
    co_await taskwire::gather(std::move(workers));
  }
};

// ---- Raw stubs, completion-queue API ----

class Slot {
 public:
  virtual ~Slot() = default;
  // Starts the next task; `tag` comes back on the queue for each step.
  virtual void start(grpc::CompletionQueue* cq, void* tag) = 0;
  // A step completed: true when the task is over (good() tells how).
  virtual bool step(grpc::CompletionQueue* cq, void* tag, bool ok) = 0;
  virtual bool good() const = 0;
};

// CreateTask, then AwaitTask of the id it got.
class CreateAwaitSlot final : public Slot {
 public:
  CreateAwaitSlot(v1::TaskService::Stub& stub, const v1::CreateTaskRequest& request,
                  const std::string& payload)
      : stub_(stub), request_(request), payload_(payload) {}

  void start(grpc::CompletionQueue* cq, void* tag) override {
    awaiting_ = false;
    good_ = false;
    context_ = std::make_unique<grpc::ClientContext>();
    context_->set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    create_reader_ = stub_.AsyncCreateTask(context_.get(), request_, cq);
    create_reader_->Finish(&created_, &status_, tag);
  }
  bool step(grpc::CompletionQueue* cq, void* tag, bool ok) override {
    if (!ok || !status_.ok()) return true;
    if (!awaiting_) {
      if (created_.state() == v1::TASK_STATE_SUCCEEDED) {
        good_ = created_.result().string_value() == payload_;
        return true;
      }
      awaiting_ = true;
      await_request_.set_id(created_.id());
      await_request_.mutable_wait_timeout()->set_seconds(25);
      context_ = std::make_unique<grpc::ClientContext>();
      context_->set_deadline(std::chrono::system_clock::now() + kCallDeadline);
      await_reader_ = stub_.AsyncAwaitTask(context_.get(), await_request_, cq);
      await_reader_->Finish(&awaited_, &status_, tag);
      return false;
    }
    good_ = awaited_.done() && awaited_.task().state() == v1::TASK_STATE_SUCCEEDED &&
            awaited_.task().result().string_value() == payload_;
    return true;
  }
  bool good() const override { return good_; }

 private:
  v1::TaskService::Stub& stub_;
  const v1::CreateTaskRequest& request_;
  const std::string& payload_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::Task>> create_reader_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::AwaitTaskResponse>> await_reader_;
  v1::Task created_;
  v1::AwaitTaskRequest await_request_;
  v1::AwaitTaskResponse awaited_;
  grpc::Status status_;
  bool awaiting_ = false;
  bool good_ = false;
};

// RunTask: create and await in one call.
class RunTaskSlot final : public Slot {
 public:
  RunTaskSlot(v1::TaskService::Stub& stub, const v1::RunTaskRequest& request,
              const std::string& payload)
      : stub_(stub), request_(request), payload_(payload) {}

  void start(grpc::CompletionQueue* cq, void* tag) override {
    context_ = std::make_unique<grpc::ClientContext>();
    context_->set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    reader_ = stub_.AsyncRunTask(context_.get(), request_, cq);
    reader_->Finish(&response_, &status_, tag);
  }
  bool step(grpc::CompletionQueue*, void*, bool) override { return true; }
  bool good() const override {
    return status_.ok() && response_.done() &&
           response_.task().state() == v1::TASK_STATE_SUCCEEDED &&
           response_.task().result().string_value() == payload_;
  }

 private:
  v1::TaskService::Stub& stub_;
  const v1::RunTaskRequest& request_;
  const std::string& payload_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::AwaitTaskResponse>> reader_;
  v1::AwaitTaskResponse response_;
  grpc::Status status_;
};

// The library's own calls made with raw stubs: the slots freed while the
// queue had events ready are refilled with one CreateTasks, and the tasks of
// each CreateTasks are followed on one AsCompletedBatches stream, as
// client.cc does for the tasks created in one pass of its loop.
class BatchedRaw {
 public:
  BatchedRaw(v1::TaskService::Stub& stub, const v1::CreateTaskRequest& task,
             const std::string& payload, Window window, Result& out)
      : stub_(stub), task_(task), payload_(payload), window_(window), out_(out) {}

  void run(int in_flight) {
    int free_slots = in_flight;
    for (;;) {
      if (free_slots > 0 && Clock::now() < window_.end) {
        create(free_slots);
        free_slots = 0;
      }
      if (ops_ == 0) break;
      void* tag = nullptr;
      bool ok = false;
      if (!cq_.Next(&tag, &ok)) break;
      free_slots += static_cast<Op*>(tag)->done(*this, ok);
      // Everything already on the queue before the next CreateTasks.
      while (cq_.AsyncNext(&tag, &ok, std::chrono::system_clock::now()) ==
             grpc::CompletionQueue::GOT_EVENT)
        free_slots += static_cast<Op*>(tag)->done(*this, ok);
    }
    cq_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
    }
  }

 private:
  struct Op {
    virtual ~Op() = default;
    // Returns the number of tasks that finished (slots freed).
    virtual int done(BatchedRaw& run, bool ok) = 0;
    grpc::ClientContext context;
    Clock::time_point started;
  };

  struct Create final : Op {
    v1::CreateTasksRequest request;
    v1::CreateTasksResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::CreateTasksResponse>> reader;
    int done(BatchedRaw& run, bool ok) override {
      std::unique_ptr<Create> self(this);
      --run.ops_;
      if (!ok || !status.ok()) {
        run.out_.errors += request.tasks_size();
        return request.tasks_size();
      }
      int finished = 0;
      auto stream = std::make_unique<Stream>();
      for (const v1::Task& task : response.tasks()) {
        if (task.state() == v1::TASK_STATE_SUCCEEDED) {
          run.finish(task, started);
          ++finished;
        } else {
          stream->request.add_ids(task.id());
        }
      }
      if (stream->request.ids_size() > 0) run.follow(std::move(stream), started);
      return finished;
    }
  };

  struct Stream final : Op {
    v1::AsCompletedRequest request;
    v1::TaskBatch message;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncReader<v1::TaskBatch>> reader;
    enum { kStarting, kReading, kFinishing } phase = kStarting;
    int done(BatchedRaw& run, bool ok) override {
      switch (phase) {
        case kStarting:
          phase = ok ? kReading : kFinishing;
          if (ok)
            reader->Read(&message, this);
          else
            reader->Finish(&status, this);
          return 0;
        case kReading: {
          if (!ok) {
            phase = kFinishing;
            reader->Finish(&status, this);
            return 0;
          }
          const int finished = message.tasks_size();
          for (const v1::Task& task : message.tasks()) run.finish(task, started);
          reader->Read(&message, this);
          return finished;
        }
        case kFinishing:
          --run.ops_;
          delete this;
          return 0;
      }
      return 0;
    }
  };

  void create(int tasks) {
    auto op = std::make_unique<Create>();
    op->started = Clock::now();
    if (window_.contains(op->started)) {
      ++out_.batches_in_window;
      out_.tasks_created_in_window += tasks;
    }
    for (int i = 0; i < tasks; ++i) *op->request.add_tasks() = task_;
    op->request.set_view(v1::TASK_VIEW_OUTCOME);  // As the library asks.
    // One idempotency key per call, as the library sends.
    op->request.set_idempotency_key("raw-" + std::to_string(getpid()) + "-" +
                                    std::to_string(++calls_));
    op->context.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    op->reader = stub_.AsyncCreateTasks(&op->context, op->request, &cq_);
    Create* raw = op.release();
    raw->reader->Finish(&raw->response, &raw->status, raw);
    ++ops_;
  }

  void follow(std::unique_ptr<Stream> op, Clock::time_point started) {
    op->started = started;
    op->context.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    op->request.set_view(v1::TASK_VIEW_OUTCOME);
    op->reader = stub_.PrepareAsyncAsCompletedBatches(&op->context, op->request, &cq_);
    Stream* raw = op.release();
    raw->reader->StartCall(raw);
    ++ops_;
  }

  void finish(const v1::Task& task, Clock::time_point started) {
    const Clock::time_point now = Clock::now();
    const bool good =
        task.state() == v1::TASK_STATE_SUCCEEDED && task.result().string_value() == payload_;
    ++out_.tasks_total;
    if (!good) ++out_.errors;
    if (good && window_.contains(now))
      out_.latencies_ns.push_back(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - started).count());
  }

  v1::TaskService::Stub& stub_;
  const v1::CreateTaskRequest& task_;
  const std::string& payload_;
  Window window_;
  Result& out_;
  grpc::CompletionQueue cq_;
  int ops_ = 0;          // Calls and streams not yet finished.
  long long calls_ = 0;  // CreateTasks calls made, for their keys.
};

void drive_raw(std::vector<std::unique_ptr<Slot>>& slots, Window window, Result& out) {
  grpc::CompletionQueue cq;
  std::vector<Clock::time_point> started(slots.size());
  auto tag_of = [](std::size_t i) {
    return reinterpret_cast<void*>(static_cast<std::intptr_t>(i + 1));
  };
  for (std::size_t i = 0; i < slots.size(); ++i) {
    started[i] = Clock::now();
    slots[i]->start(&cq, tag_of(i));
  }
  std::size_t active = slots.size();
  void* tag = nullptr;
  bool ok = false;
  while (active > 0 && cq.Next(&tag, &ok)) {
    const auto i = static_cast<std::size_t>(reinterpret_cast<std::intptr_t>(tag) - 1);
    if (!slots[i]->step(&cq, tag, ok)) continue;
    const Clock::time_point now = Clock::now();
    const bool good = slots[i]->good();
    ++out.tasks_total;
    if (!good) ++out.errors;
    if (good && window.contains(now))
      out.latencies_ns.push_back(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - started[i]).count());
    if (now < window.end) {
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

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"Remote echo tasks, N in flight: the client library against raw gRPC stubs"};
  std::string target;
  std::string api = "library";
  int in_flight = 64;
  double duration = 5.0;
  double warmup = 1.0;
  std::string payload = "x";
  std::string label;
  long server_pid = 0;
  bool count_rpcs = false;
  app.option_defaults()->always_capture_default();
  app.add_option("--target", target, "host:port")->required();
  app.add_option(
         "--api", api,
         "library, raw-batched (the library's calls), raw (CreateTask + AwaitTask) or raw-runtask")
      ->check(CLI::IsMember({"library", "raw-batched", "raw", "raw-runtask"}));
  app.add_option("--in-flight", in_flight, "Tasks kept in flight")->check(CLI::PositiveNumber);
  app.add_option("--duration", duration, "Measured seconds")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "Seconds before the measured window")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--payload", payload, "The echo task's args.value");
  app.add_option("--label", label, "Name in the output (default: the api)");
  app.add_option("--server-pid", server_pid, "Also report this process's CPU time");
  app.add_flag("--count-rpcs", count_rpcs, "Count the calls started per method (slower)");
  CLI11_PARSE(app, argc, argv);
  if (label.empty()) label = api;

  if (count_rpcs) {
    static CountingFactory factory;
    grpc::experimental::RegisterGlobalClientInterceptorFactory(&factory);
  }

  Value args;
  (*args.mutable_struct_value()->mutable_fields())["value"].set_string_value(payload);

  Result result;
  Window window;
  double server_cpu = -1, client_cpu = -1;
  std::thread monitor;
  auto start_clock = [&] {
    const Clock::time_point begin = Clock::now();
    window.start =
        begin + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup));
    window.end = window.start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(duration));
    // CPU time of both sides over the measured window, read at its edges.
    monitor = std::thread([&, w = window] {
      std::this_thread::sleep_until(w.start);
      double s0 = server_pid > 0 ? process_cpu_seconds(server_pid) : 0, c0 = own_cpu_seconds();
      std::this_thread::sleep_until(w.end);
      double s1 = server_pid > 0 ? process_cpu_seconds(server_pid) : 0, c1 = own_cpu_seconds();
      if (server_pid > 0) server_cpu = s1 - s0;
      client_cpu = c1 - c0;
    });
  };

  if (api == "library") {
    taskwire::EventLoop loop;
    taskwire::client::ClientOptions options;
    options.target = target;
    taskwire::client::Client client(loop, options);
    LibraryRun run{loop, client, args, payload, {}, result};
    // The window starts once the first call has connected.
    auto body = [&]() -> Task<void> {
      (void)co_await client.run("echo", args);
      start_clock();
      run.window = window;
      co_await run.main(in_flight);
    };
    loop.run(body());
  } else {
    grpc::ChannelArguments channel_args;
    channel_args.SetMaxReceiveMessageSize(-1);
    auto channel =
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), channel_args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10)))
      throw std::runtime_error("cannot connect to " + target);
    auto stub = v1::TaskService::NewStub(channel);
    v1::CreateTaskRequest create_request;
    create_request.set_kind("echo");
    *create_request.mutable_args() = args;
    v1::RunTaskRequest run_request;
    *run_request.mutable_task() = create_request;
    if (api == "raw-batched") {
      start_clock();
      BatchedRaw(*stub, create_request, payload, window, result).run(in_flight);
    }
    std::vector<std::unique_ptr<Slot>> slots;
    for (int i = 0; api != "raw-batched" && i < in_flight; ++i) {
      if (api == "raw")
        slots.push_back(std::make_unique<CreateAwaitSlot>(*stub, create_request, payload));
      else
        slots.push_back(std::make_unique<RunTaskSlot>(*stub, run_request, payload));
    }
    if (api != "raw-batched") {
      start_clock();
      drive_raw(slots, window, result);
    }
  }
  if (monitor.joinable()) monitor.join();

  std::sort(result.latencies_ns.begin(), result.latencies_ns.end());
  const auto tasks = static_cast<double>(result.latencies_ns.size());
  std::string rpcs;
  for (const auto& [method, n] : RpcCounter::instance().take()) {
    rpcs += (rpcs.empty() ? "" : ", ") + ("\"" + method + "\": " + std::to_string(n));
  }
  std::printf(
      "{\"label\": \"%s\", \"api\": \"%s\", \"in_flight\": %d, \"duration_s\": %.3f, "
      "\"tasks\": %.0f, \"tasks_per_s\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
      "\"tasks_total\": %lld, \"errors\": %lld, \"window_client_cpu_s\": %.4f, "
      "\"window_server_cpu_s\": %.4f, \"batches_in_window\": %lld, "
      "\"tasks_created_in_window\": %lld, \"rpcs_started\": {%s}}\n",
      label.c_str(), api.c_str(), in_flight, duration, tasks, tasks / duration,
      quantile(result.latencies_ns, 0.5) / 1e3, quantile(result.latencies_ns, 0.99) / 1e3,
      result.tasks_total, result.errors, client_cpu, server_cpu, result.batches_in_window,
      result.tasks_created_in_window, rpcs.c_str());
  return result.errors == 0 ? 0 : 3;
} catch (const std::exception& e) {
  std::fprintf(stderr, "overhead_client: %s\n", e.what());
  return 2;
}
