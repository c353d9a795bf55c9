// 100,000 remote sleep tasks gathered through the client library: the wall
// time from the first create_task to gather's result, and the client's
// memory per task while they are awaited. Prints one JSON line.
//
//   gather_client --target 127.0.0.1:PORT [--tasks 100000] [--seconds 2.0]
//                 [--server-pid PID]
//
// Memory is read three ways, each as growth over a baseline taken after one
// call has connected the channel and after the caller's own vectors of
// RemoteTask and handles are reserved (the caller's data, 16 B per task,
// reported apart):
//   - VmRSS of this process (/proc/self/statm: resident pages now);
//   - the bytes `operator new` has handed out and not taken back (this
//     binary replaces operator new/delete and counts malloc_usable_size):
//     the C++ heap of the library, protobuf and gRPC's C++ layer;
//   - the calls to operator new made meanwhile (not live ones: all calls);
//   - what malloc has handed out and not taken back, over all its arenas
//     (malloc_info's totals): the C++ heap and gRPC's C core alike. This is
//     the figure held to the target: unlike RSS it does not count memory
//     that was freed again (request and answer buffers) but stays mapped.
// The "awaited" sample is taken once every task has its id (all CreateTasks
// answered) and while none has finished: what holding the awaited tasks
// costs, results not yet arrived. A second sample after gather's result
// includes the results.
#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "bench/proc_stats.h"
#include "client/client.h"
#include "core/event_loop.h"
#include "core/gather.h"
#include "core/sleep.h"

// ---- Counting operator new ----

namespace {
std::atomic<long long> g_live_bytes{0};
std::atomic<long long> g_new_calls{0};

void* counted_new(std::size_t size) {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  g_live_bytes.fetch_add(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
  g_new_calls.fetch_add(1, std::memory_order_relaxed);
  return p;
}
void counted_delete(void* p) noexcept {
  if (p == nullptr) return;
  g_live_bytes.fetch_sub(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}
}  // namespace

void* operator new(std::size_t size) { return counted_new(size); }
void* operator new[](std::size_t size) { return counted_new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept try {
  return counted_new(size);
} catch (...) {
  return nullptr;
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept try {
  return counted_new(size);
} catch (...) {
  return nullptr;
}
void operator delete(void* p) noexcept { counted_delete(p); }
void operator delete[](void* p) noexcept { counted_delete(p); }
void operator delete(void* p, std::size_t) noexcept { counted_delete(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_delete(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_delete(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_delete(p); }

namespace {

using namespace taskwire;
using client::RemoteTask;
using client::Value;
using Steady = std::chrono::steady_clock;
using System = std::chrono::system_clock;

long rss_bytes() {
  long size = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

using taskwire::bench::process_cpu_seconds;

// The value of `attr` in the first element of `xml` that starts with `tag`.
long long xml_attr(const std::string& xml, const std::string& tag, const std::string& attr) {
  auto at = xml.find(tag);
  if (at == std::string::npos) return 0;
  auto key = xml.find(attr + "=\"", at);
  if (key == std::string::npos) return 0;
  return std::atoll(xml.c_str() + key + attr.size() + 2);
}

// Bytes malloc has handed out and not taken back, over every arena (so
// gRPC's threads too): from malloc_info's totals, the memory malloc holds
// from the system less its free chunks, plus mmapped blocks.
long long malloc_in_use() {
  char* text = nullptr;
  std::size_t size = 0;
  FILE* out = open_memstream(&text, &size);
  if (out == nullptr) return -1;
  malloc_info(0, out);
  std::fclose(out);
  std::string xml(text, size);
  std::free(text);
  auto totals = xml.rfind("</heap>");
  if (totals == std::string::npos) return -1;
  xml = xml.substr(totals);
  return xml_attr(xml, "<system type=\"current\"", "size") -
         xml_attr(xml, "<total type=\"fast\"", "size") -
         xml_attr(xml, "<total type=\"rest\"", "size") +
         xml_attr(xml, "<total type=\"mmap\"", "size");
}

struct Sample {
  long rss = 0;
  long long live = 0;
  long long calls = 0;
  long long malloc = 0;
  static Sample now() {
    return {rss_bytes(), g_live_bytes.load(std::memory_order_relaxed),
            g_new_calls.load(std::memory_order_relaxed), malloc_in_use()};
  }
};

double seconds(Steady::duration d) { return std::chrono::duration<double>(d).count(); }

double since(System::time_point origin, const google::protobuf::Timestamp& t) {
  auto at = System::time_point(std::chrono::duration_cast<System::duration>(
      std::chrono::seconds(t.seconds()) + std::chrono::nanoseconds(t.nanos())));
  return std::chrono::duration<double>(at - origin).count();
}

struct Figures {
  std::size_t tasks = 0;
  double sleep_s = 0;
  Sample base, awaited, with_results;
  std::size_t finished_at_awaited_sample = 0;
  double create_calls_s = 0;       // The loop of create_task calls alone.
  double all_created_s = 0;        // First create_task → every id known (±5 ms).
  double awaited_sample_s = 0;     // When the awaited sample was taken.
  double total_s = 0;              // First create_task → gather's result.
  double first_create_time_s = 0;  // Server's create_time, from the first create_task.
  double last_create_time_s = 0;
  double last_finish_time_s = 0;  // Of the last task created.
  double max_lateness_ms = 0;     // finish − create − sleep, the worse of first and last.
  double client_cpu_s = 0;
  double server_cpu_s = -1;
  std::size_t results = 0;
};

Task<void> measure(EventLoop& loop, client::Client& tw, Figures& f, long server_pid) {
  Value args;
  (*args.mutable_struct_value()->mutable_fields())["value"].set_string_value("x");
  (void)co_await tw.run("echo", args);  // Connects the channel.
  Value sleep_args;
  (*sleep_args.mutable_struct_value()->mutable_fields())["seconds"].set_number_value(f.sleep_s);

  std::vector<RemoteTask> remotes;
  std::vector<TaskHandle<Value>> handles;
  remotes.reserve(f.tasks);
  handles.reserve(f.tasks);
  f.base = Sample::now();
  const double cpu0 = process_cpu_seconds(getpid());
  const double server_cpu0 = server_pid > 0 ? process_cpu_seconds(server_pid) : -1;

  const Steady::time_point t0 = Steady::now();
  const System::time_point wall0 = System::now();
  for (std::size_t i = 0; i < f.tasks; ++i) {
    remotes.push_back(tw.create_task("sleep", sleep_args));
    handles.push_back(remotes.back().handle());
  }
  f.create_calls_s = seconds(Steady::now() - t0);
  TaskHandle<std::vector<Value>> gathering = loop.create_task(gather(std::move(handles)));

  // Wait (polling every 5 ms) until every task has its id, then sample.
  for (;;) {
    co_await sleep(std::chrono::milliseconds(5));
    bool all =
        std::all_of(remotes.begin(), remotes.end(), [](const RemoteTask& r) { return r.has_id(); });
    if (all) break;
  }
  f.all_created_s = seconds(Steady::now() - t0);
  f.awaited = Sample::now();
  f.awaited_sample_s = seconds(Steady::now() - t0);
  f.finished_at_awaited_sample = static_cast<std::size_t>(
      std::count_if(remotes.begin(), remotes.end(), [](const RemoteTask& r) { return r.done(); }));

  std::vector<Value> results = co_await gathering;
  f.total_s = seconds(Steady::now() - t0);
  f.with_results = Sample::now();
  f.client_cpu_s = process_cpu_seconds(getpid()) - cpu0;
  if (server_pid > 0) f.server_cpu_s = process_cpu_seconds(server_pid) - server_cpu0;
  f.results = results.size();

  // The answers carry the OUTCOME view (no times): ask the server for the
  // first and the last task created, in full, after the clock has stopped.
  const v1::Task first = co_await tw.get(remotes.front().id());
  const v1::Task last = co_await tw.get(remotes.back().id());
  f.first_create_time_s = since(wall0, first.create_time());
  f.last_create_time_s = since(wall0, last.create_time());
  f.last_finish_time_s = since(wall0, last.finish_time());
  f.max_lateness_ms = std::max(since(wall0, first.finish_time()) - f.first_create_time_s,
                               f.last_finish_time_s - f.last_create_time_s) * 1e3 -
                      f.sleep_s * 1e3;
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"Remote sleep tasks gathered through the client library: time and memory"};
  std::string target;
  Figures f;
  f.tasks = 100'000;
  f.sleep_s = 2.0;
  long server_pid = 0;
  app.option_defaults()->always_capture_default();
  app.add_option("--target", target, "host:port")->required();
  app.add_option("--tasks", f.tasks, "Remote sleep tasks")->check(CLI::PositiveNumber);
  app.add_option("--seconds", f.sleep_s, "Each task's sleep")->check(CLI::PositiveNumber);
  app.add_option("--server-pid", server_pid, "Also report this process's CPU time");
  CLI11_PARSE(app, argc, argv);

  {
    EventLoop loop;
    client::ClientOptions options;
    options.target = target;
    client::Client tw(loop, options);
    loop.run(measure(loop, tw, f, server_pid));
  }

  auto per_task = [&](double bytes) { return bytes / static_cast<double>(f.tasks); };
  std::printf(
      "{\"tasks\": %zu, \"sleep_s\": %.3f, \"total_s\": %.4f, \"create_calls_s\": %.4f, "
      "\"all_created_s\": %.4f, \"awaited_sample_s\": %.4f, \"first_create_time_s\": %.4f, "
      "\"last_create_time_s\": %.4f, \"last_finish_time_s\": %.4f, \"max_lateness_ms\": %.1f, "
      "\"finished_at_awaited_sample\": %zu, \"results\": %zu, "
      "\"rss_base_kb\": %ld, \"rss_awaited_kb\": %ld, \"rss_results_kb\": %ld, "
      "\"awaited_rss_bytes_per_task\": %.1f, \"awaited_heap_bytes_per_task\": %.1f, "
      "\"awaited_new_calls_per_task\": %.2f, \"awaited_malloc_bytes_per_task\": %.1f, "
      "\"results_malloc_bytes_per_task\": %.1f, \"results_rss_bytes_per_task\": %.1f, "
      "\"results_heap_bytes_per_task\": %.1f, \"caller_vectors_bytes_per_task\": %zu, "
      "\"client_cpu_s\": %.3f, \"server_cpu_s\": %.3f}\n",
      f.tasks, f.sleep_s, f.total_s, f.create_calls_s, f.all_created_s, f.awaited_sample_s,
      f.first_create_time_s, f.last_create_time_s, f.last_finish_time_s, f.max_lateness_ms,
      f.finished_at_awaited_sample, f.results, f.base.rss / 1024, f.awaited.rss / 1024,
      f.with_results.rss / 1024, per_task(static_cast<double>(f.awaited.rss - f.base.rss)),
      per_task(static_cast<double>(f.awaited.live - f.base.live)),
      per_task(static_cast<double>(f.awaited.calls - f.base.calls)),
      per_task(static_cast<double>(f.awaited.malloc - f.base.malloc)),
      per_task(static_cast<double>(f.with_results.malloc - f.base.malloc)),
      per_task(static_cast<double>(f.with_results.rss - f.base.rss)),
      per_task(static_cast<double>(f.with_results.live - f.base.live)),
      sizeof(client::RemoteTask) + sizeof(TaskHandle<Value>), f.client_cpu_s, f.server_cpu_s);
  return f.results == f.tasks ? 0 : 3;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gather_client: %s\n", e.what());
  return 2;
}
