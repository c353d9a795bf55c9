// taskwired's task figures, driven through its wire API (sync stubs):
//
//   task_load create-gather --target T [--tasks 100000] [--batch 10000]
//                           [--seconds 2.0] [--server-pid PID] [--view outcome|full]
//     Creates `tasks` sleep tasks with CreateTasks, `batch` per call, one
//     call after another, then sends one Gather over all their ids, and once
//     it answers the same Gather again in the full view (all finished: its
//     cost alone, and the tasks' times). `--view` is the view of the
//     CreateTasks answers and of the timed Gather (default outcome).
//     Prints one JSON line of timings (see docs/benchmarks-server.md).
//
//   task_load memory --target T --server-pid PID [--tasks 1000000]
//                    [--batch 100000] [--seconds 3600] [--settle 2] [--view ...]
//     Reads the server's VmRSS, creates `tasks` sleep tasks that stay pending,
//     reads VmRSS after each batch and, once it has settled, again; prints
//     one JSON line with the RSS figures and bytes per task.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/proc_stats.h"
#include "taskwire/v1/tasks.grpc.pb.h"

namespace {

namespace v1 = taskwire::v1;
using Steady = std::chrono::steady_clock;
using System = std::chrono::system_clock;

double seconds_between(Steady::time_point a, Steady::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::int64_t unix_nanos(System::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::int64_t unix_nanos(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1'000'000'000 + t.nanos();
}

using taskwire::bench::status_kb;

using taskwire::bench::process_cpu_seconds;

using taskwire::bench::quantile;

v1::CreateTasksRequest sleep_batch(long count, double seconds, v1::TaskView view) {
  v1::CreateTasksRequest request;
  request.set_view(view);
  request.mutable_tasks()->Reserve(static_cast<int>(count));
  for (long i = 0; i < count; ++i) {
    v1::CreateTaskRequest* task = request.add_tasks();
    task->set_kind("sleep");
    (*task->mutable_args()->mutable_struct_value()->mutable_fields())["seconds"].set_number_value(
        seconds);
  }
  return request;
}

std::unique_ptr<v1::TaskService::Stub> connect(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(System::now() + std::chrono::seconds(10)))
    throw std::runtime_error("cannot connect to " + target);
  return v1::TaskService::NewStub(channel);
}

void check(const grpc::Status& status, const std::string& what) {
  if (!status.ok()) {
    throw std::runtime_error(what + " failed: " + std::to_string(status.error_code()) + " " +
                             status.error_message());
  }
}

// Sends CreateTasks batches one after another; fills ids and the time each
// answer arrived.
struct Created {
  std::vector<std::string> ids;
  Steady::time_point first_sent;
  System::time_point first_sent_wall;
  std::vector<Steady::time_point> answered;  // Per batch.
  std::vector<long> rss_kb;                  // Per batch, if a pid was given.
};

Created create_all(v1::TaskService::Stub& stub, long tasks, long batch, double seconds, long pid,
                   v1::TaskView view) {
  Created out;
  out.ids.reserve(tasks);
  v1::CreateTasksRequest full = sleep_batch(std::min(batch, tasks), seconds, view);
  out.first_sent = Steady::now();
  out.first_sent_wall = System::now();
  for (long done = 0; done < tasks;) {
    long n = std::min(batch, tasks - done);
    v1::CreateTasksRequest partial;
    const v1::CreateTasksRequest* request = &full;
    if (n != full.tasks_size()) {
      partial = sleep_batch(n, seconds, view);
      request = &partial;
    }
    grpc::ClientContext context;
    context.set_deadline(System::now() + std::chrono::seconds(120));
    v1::CreateTasksResponse response;
    check(stub.CreateTasks(&context, *request, &response), "CreateTasks");
    out.answered.push_back(Steady::now());
    if (pid > 0) out.rss_kb.push_back(status_kb(pid, "VmRSS"));
    if (response.tasks_size() != n) throw std::runtime_error("CreateTasks: wrong task count");
    for (const v1::Task& task : response.tasks()) out.ids.push_back(task.id());
    done += n;
  }
  return out;
}

struct Options {
  std::string target;
  long pid = 0;
  long tasks = 0;
  long batch = 0;
  double seconds = 0;
  double settle = 2.0;
  std::string view = "outcome";

  v1::TaskView task_view() const {
    return view == "full" ? v1::TASK_VIEW_FULL : v1::TASK_VIEW_OUTCOME;
  }
};

int create_gather(const Options& options) {
  const std::string& target = options.target;
  const long tasks = options.tasks;
  const long batch = options.batch;
  const double seconds = options.seconds;
  const long pid = options.pid;
  auto stub = connect(target);
  const double cpu0 = pid > 0 ? process_cpu_seconds(pid) : -1;

  Created created = create_all(*stub, tasks, batch, seconds, pid, options.task_view());
  const double cpu_created = pid > 0 ? process_cpu_seconds(pid) : -1;
  const Steady::time_point last_answer = created.answered.back();

  v1::GatherRequest gather;
  gather.mutable_ids()->Reserve(static_cast<int>(created.ids.size()));
  for (const auto& id : created.ids) gather.add_ids(id);
  gather.set_view(options.task_view());
  grpc::ClientContext context;
  context.set_deadline(System::now() + std::chrono::seconds(300));
  v1::GatherResponse response;
  const Steady::time_point gather_sent = Steady::now();
  check(stub->Gather(&context, gather, &response), "Gather");
  const Steady::time_point gather_answered = Steady::now();
  const System::time_point gather_answered_wall = System::now();
  const double cpu_end = pid > 0 ? process_cpu_seconds(pid) : -1;

  // The same Gather again, all tasks now finished, in the full view: what
  // answering it costs without any waiting, and the tasks' times.
  gather.set_view(v1::TASK_VIEW_FULL);
  // (building, sending and receiving 100,000 tasks) without any waiting.
  grpc::ClientContext again_context;
  again_context.set_deadline(System::now() + std::chrono::seconds(300));
  v1::GatherResponse again;
  const double again_cpu0 = pid > 0 ? process_cpu_seconds(pid) : -1;
  const Steady::time_point again_sent = Steady::now();
  check(stub->Gather(&again_context, gather, &again), "second Gather");
  const double regather_s = seconds_between(again_sent, Steady::now());
  const double regather_cpu = pid > 0 ? process_cpu_seconds(pid) - again_cpu0 : -1;

  if (!response.done() || response.tasks_size() != tasks)
    throw std::runtime_error("Gather: not done or wrong task count");
  std::int64_t min_create = INT64_MAX, max_create = 0, max_finish = 0;
  std::vector<std::int64_t> lateness, start_delay;
  lateness.reserve(tasks);
  start_delay.reserve(tasks);
  const auto sleep_nanos = static_cast<std::int64_t>(seconds * 1e9);
  long not_succeeded = 0;
  for (const v1::Task& task : response.tasks()) {
    if (task.state() != v1::TASK_STATE_SUCCEEDED) ++not_succeeded;
  }
  for (const v1::Task& task : again.tasks()) {
    std::int64_t c = unix_nanos(task.create_time());
    std::int64_t s = unix_nanos(task.start_time());
    std::int64_t f = unix_nanos(task.finish_time());
    min_create = std::min(min_create, c);
    max_create = std::max(max_create, c);
    max_finish = std::max(max_finish, f);
    lateness.push_back(f - c - sleep_nanos);
    start_delay.push_back(s - c);
  }
  std::sort(lateness.begin(), lateness.end());
  std::sort(start_delay.begin(), start_delay.end());
  const double create_s = seconds_between(created.first_sent, last_answer);
  double slowest_batch = 0;
  Steady::time_point previous = created.first_sent;
  for (auto t : created.answered) {
    slowest_batch = std::max(slowest_batch, seconds_between(previous, t));
    previous = t;
  }
  auto s = [](std::int64_t nanos) { return static_cast<double>(nanos) / 1e9; };
  std::printf(
      "{\"tasks\": %ld, \"batch\": %ld, \"sleep_s\": %.3f, \"not_succeeded\": %ld, "
      "\"create_s\": %.4f, \"create_tasks_per_s\": %.1f, \"slowest_batch_s\": %.4f, "
      "\"first_create_to_gather_answer_s\": %.4f, "
      "\"last_created_to_gather_answer_s\": %.4f, "
      "\"last_create_answer_to_gather_answer_s\": %.4f, \"gather_call_s\": %.4f, "
      "\"server_first_create_to_last_finish_s\": %.4f, "
      "\"server_create_span_s\": %.4f, \"last_finish_to_gather_answer_s\": %.4f, "
      "\"lateness_p50_ms\": %.3f, \"lateness_p99_ms\": %.3f, \"lateness_max_ms\": %.3f, "
      "\"start_delay_p50_ms\": %.3f, \"start_delay_max_ms\": %.3f, "
      "\"client_wall_skew_first_create_ms\": %.3f, "
      "\"server_cpu_create_s\": %.3f, \"server_cpu_total_s\": %.3f, "
      "\"finished_gather_call_s\": %.4f, \"finished_gather_server_cpu_s\": %.3f, "
      "\"gather_response_bytes\": %zu, \"view\": \"%s\", \"timed_gather_response_bytes\": %zu}\n",
      tasks, batch, seconds, not_succeeded, create_s, static_cast<double>(tasks) / create_s,
      slowest_batch, seconds_between(created.first_sent, gather_answered),
      s(unix_nanos(gather_answered_wall) - max_create),
      seconds_between(last_answer, gather_answered), seconds_between(gather_sent, gather_answered),
      s(max_finish - min_create), s(max_create - min_create),
      s(unix_nanos(gather_answered_wall) - max_finish), quantile(lateness, 0.5) / 1e6,
      quantile(lateness, 0.99) / 1e6, lateness.back() / 1e6, quantile(start_delay, 0.5) / 1e6,
      start_delay.back() / 1e6, (min_create - unix_nanos(created.first_sent_wall)) / 1e6,
      pid > 0 ? cpu_created - cpu0 : -1.0, pid > 0 ? cpu_end - cpu0 : -1.0, regather_s,
      regather_cpu, again.ByteSizeLong(), options.view.c_str(), response.ByteSizeLong());
  return not_succeeded == 0 ? 0 : 3;
}

int memory(const Options& options) {
  const std::string& target = options.target;
  const long pid = options.pid;
  const long tasks = options.tasks;
  const long batch = options.batch;
  const double seconds = options.seconds;
  const double settle = options.settle;
  auto stub = connect(target);
  const long rss_before = status_kb(pid, "VmRSS");
  const double cpu0 = process_cpu_seconds(pid);

  Created created = create_all(*stub, tasks, batch, seconds, pid, options.task_view());
  const double create_s = seconds_between(created.first_sent, created.answered.back());
  const double cpu_created = process_cpu_seconds(pid);
  // The runners take their first step (arm their timer) on the loop after
  // the answer: wait until RSS stops moving, or `settle` seconds.
  long rss_after = status_kb(pid, "VmRSS");
  const Steady::time_point settle_end =
      Steady::now() +
      std::chrono::duration_cast<Steady::duration>(std::chrono::duration<double>(settle));
  while (Steady::now() < settle_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    rss_after = status_kb(pid, "VmRSS");
  }
  const long hwm = status_kb(pid, "VmHWM");
  std::string per_batch;
  for (long kb : created.rss_kb) per_batch += (per_batch.empty() ? "" : ", ") + std::to_string(kb);
  const double per_task = (rss_after - rss_before) * 1024.0 / static_cast<double>(tasks);
  // The marginal cost: from after the first batch to the settled end, which
  // leaves out what the first call allocates once (buffers, arenas).
  const long first_batch = std::min(batch, tasks);
  const double marginal = tasks > first_batch ? (rss_after - created.rss_kb.front()) * 1024.0 /
                                                    static_cast<double>(tasks - first_batch)
                                              : per_task;
  std::printf(
      "{\"tasks\": %ld, \"batch\": %ld, \"rss_before_kb\": %ld, \"rss_after_kb\": %ld, "
      "\"vm_hwm_kb\": %ld, \"bytes_per_task\": %.1f, \"marginal_bytes_per_task\": %.1f, "
      "\"rss_per_batch_kb\": [%s], \"create_s\": %.3f, \"create_tasks_per_s\": %.1f, "
      "\"server_cpu_create_s\": %.3f}\n",
      tasks, batch, rss_before, rss_after, hwm, per_task, marginal, per_batch.c_str(), create_s,
      static_cast<double>(tasks) / create_s, cpu_created - cpu0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"taskwired's task creation, Gather and memory figures"};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  Options gather, mem;
  gather.tasks = 100'000;
  gather.batch = 10'000;
  gather.seconds = 2.0;
  mem.tasks = 1'000'000;
  mem.batch = 100'000;
  mem.seconds = 3600;
  CLI::App* cg = app.add_subcommand("create-gather", "CreateTasks of sleep tasks, then a Gather");
  CLI::App* mm = app.add_subcommand("memory", "taskwired's RSS per pending sleep task");
  for (auto [sub, o] : {std::pair{cg, &gather}, std::pair{mm, &mem}}) {
    sub->add_option("--target", o->target, "host:port")->required();
    sub->add_option("--tasks", o->tasks, "Tasks to create")->check(CLI::PositiveNumber);
    sub->add_option("--batch", o->batch, "Tasks per CreateTasks")->check(CLI::PositiveNumber);
    sub->add_option("--seconds", o->seconds, "Each sleep task's seconds")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--view", o->view, "How much of each task the answers carry")
        ->check(CLI::IsMember({"outcome", "full"}));
  }
  cg->add_option("--server-pid", gather.pid, "Also report the server's CPU time");
  mm->add_option("--server-pid", mem.pid, "The server, for its VmRSS")->required();
  mm->add_option("--settle", mem.settle, "Seconds to let RSS settle after the last call");
  CLI11_PARSE(app, argc, argv);
  return cg->parsed() ? create_gather(gather) : memory(mem);
} catch (const std::exception& e) {
  std::fprintf(stderr, "task_load: %s\n", e.what());
  return 2;
}
