// Issue target (c): a million tasks sleeping at once.
//
// Two runs, each in a fresh child process so that one cannot reuse memory the
// other freed:
//   virtual  the order check. Each task records when it started sleeping and
//            when it woke; afterwards every task must have woken exactly at
//            its deadline, and the wake-ups must be sorted by deadline, equal
//            deadlines in arming order. Virtual time makes 1-100 s sleeps take
//            no wall time and every deadline exact.
//   real     the figures compared with asyncio: each task is a bare
//            `co_await sleep(d)` (asyncio_bench.py's tasks are
//            `asyncio.sleep(d)` itself), on the real clock, sleeping 1-2 s so
//            that nothing wakes while tasks are still being created.
// For each it reports:
//   - RSS growth per task once all N are created (not started), and once all
//     N have run their first step and sit in the timer heap: the "all
//     pending" figure the target is about;
//   - live heap bytes and operator new calls per task (counted here), to tell
//     the runtime's own footprint from page-level overhead;
//   - creation rate (create_task calls only, as asyncio.create_task) on
//     fresh memory ("cold", the figure compared with asyncio) and, on the
//     real clock, again once the first N have finished and their memory can
//     be reused ("warm"); and the rate until every task is asleep;
//   - the wake-up check: OK / FAIL.
//
// Usage: task_memory [--tasks=N] [--json]
//   --json prints one JSON object per run instead of the table, for
//   run_core_bench.sh.

#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>
#include <random>
#include <vector>

#include "core/clock.h"
#include "core/event_loop.h"
#include "core/sleep.h"
#include "core/task.h"

// Counting operator new/delete: the way to see how much the runtime itself
// keeps per task (frames, ready queue, timer heap) apart from what the kernel
// adds. Live bytes are malloc's usable sizes, so freed buffers (the timer
// heap's vector as it doubles) do not count. Single-threaded: plain counters.
namespace {
std::size_t g_live_bytes = 0;
std::size_t g_new_calls = 0;
}  // namespace

void* operator new(std::size_t size) {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  g_live_bytes += malloc_usable_size(p);
  ++g_new_calls;
  return p;
}
void operator delete(void* p) noexcept {
  if (p != nullptr) g_live_bytes -= malloc_usable_size(p);
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

namespace taskwire {
namespace {

using namespace std::chrono_literals;

// Rates are per second of this process's CPU time (user + system, which
// includes page faults), as Google Benchmark's items_per_second and
// asyncio_bench.py's figures are: on a shared, noisy machine, time spent
// running someone else's process is not ours to count.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

long rss_bytes() {
  // statm's second field is resident pages: the current figure, where
  // getrusage's ru_maxrss is a high-water mark.
  long size = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

struct Result {
  const char* run;  // Points into this binary's literals: valid across fork.
  std::size_t tasks;
  double created_bytes_per_task;    // RSS growth after create_task only.
  double sleeping_bytes_per_task;   // RSS growth with every task asleep.
  double live_heap_bytes_per_task;  // What operator new handed out and is still live.
  double new_calls_per_task;
  double create_rate;       // create_task calls per second.
  double start_rate;        // Tasks per second until all are asleep.
  double warm_create_rate;  // create_task calls per second, memory reused (real run only).
  std::size_t woken;
  bool woke_early;  // Some task woke before all were asleep, or before its deadline.
  bool order_checked;
  bool woke_in_order;  // Only checked on the virtual clock.
};

// What the logging sleepers write. Preallocated before the baseline is read,
// so it does not count as per-task memory.
struct WakeLog {
  std::vector<std::uint32_t> order;   // Task ids in wake-up order.
  std::vector<TimePoint> started_at;  // By id: when the sleep began.
  std::vector<TimePoint> woke_at;     // By id.
};

Task<void> logged_sleeper(std::uint32_t id, Duration delay, WakeLog& log) {
  EventLoop& loop = *EventLoop::current();
  log.started_at[id] = loop.now();
  co_await sleep(delay);
  log.woke_at[id] = loop.now();
  log.order.push_back(id);
}

std::size_t g_bare_woken = 0;

// The smallest task that sleeps: what asyncio_bench.py's tasks do.
Task<void> bare_sleeper(Duration delay) {
  co_await sleep(delay);
  ++g_bare_woken;
}

// Checks the log of a virtual-clock run: every task woke exactly at its
// deadline, in (deadline, arming order) order. Ids are in arming order
// because first steps run in creation order.
void check_log(const WakeLog& log, const std::vector<Duration>& delays, Result& result) {
  result.order_checked = true;
  result.woke_in_order = true;
  for (std::size_t k = 0; k < log.order.size(); ++k) {
    const std::uint32_t id = log.order[k];
    const TimePoint deadline = log.started_at[id] + delays[id];
    if (log.woke_at[id] != deadline) result.woke_early = true;
    if (k == 0) continue;
    const std::uint32_t prev = log.order[k - 1];
    const TimePoint prev_deadline = log.started_at[prev] + delays[prev];
    if (deadline < prev_deadline || (deadline == prev_deadline && id < prev)) {
      result.woke_in_order = false;
    }
  }
}

Task<Result> sleep_many(const char* run, std::size_t n, Duration min_delay, Duration max_delay,
                        bool logged) {
  EventLoop& loop = *EventLoop::current();
  std::mt19937_64 rng(42);
  // Millisecond granularity makes many deadlines equal, which exercises the
  // tie-break (equal deadlines wake in arming order).
  std::uniform_int_distribution<std::int64_t> dist(
      std::chrono::duration_cast<std::chrono::milliseconds>(min_delay).count(),
      std::chrono::duration_cast<std::chrono::milliseconds>(max_delay).count());
  std::vector<Duration> delays(n);
  for (auto& delay : delays) delay = std::chrono::milliseconds(dist(rng));

  WakeLog log;
  if (logged) {
    log.order.reserve(n);
    log.started_at.assign(n, TimePoint{});
    log.woke_at.assign(n, TimePoint{});
  }
  g_bare_woken = 0;

  Result result{};
  result.run = run;
  result.tasks = n;

  const long rss0 = rss_bytes();
  const std::size_t live0 = g_live_bytes;
  const std::size_t calls0 = g_new_calls;
  const double t0 = cpu_seconds();
  for (std::size_t i = 0; i < n; ++i) {
    // Handles are dropped: the loop keeps a created task alive, and
    // asyncio_bench.py keeps no references either.
    if (logged) {
      (void)loop.create_task(logged_sleeper(static_cast<std::uint32_t>(i), delays[i], log));
    } else {
      (void)loop.create_task(bare_sleeper(delays[i]));
    }
  }
  const double t1 = cpu_seconds();
  const long rss1 = rss_bytes();
  // sleep(0) puts this task behind the N first steps already queued, so when
  // it resumes every sleeper has armed its timer.
  co_await sleep(0s);
  const double t2 = cpu_seconds();
  const long rss2 = rss_bytes();
  const std::size_t live2 = g_live_bytes;
  const std::size_t calls2 = g_new_calls;
  result.woke_early = log.order.size() + g_bare_woken != 0;

  result.created_bytes_per_task = static_cast<double>(rss1 - rss0) / n;
  result.sleeping_bytes_per_task = static_cast<double>(rss2 - rss0) / n;
  result.live_heap_bytes_per_task = static_cast<double>(live2 - live0) / n;
  result.new_calls_per_task = static_cast<double>(calls2 - calls0) / n;
  result.create_rate = n / (t1 - t0);
  result.start_rate = n / (t2 - t0);

  // Past every deadline: the last one is at most max_delay after the last
  // first step, which ran before this task resumed.
  co_await sleep(max_delay + 1ms);
  result.woken = logged ? log.order.size() : g_bare_woken;
  if (logged) check_log(log, delays, result);

  if (!logged) {
    // The same again, now that malloc has the freed frames to hand out:
    // the difference from create_rate is first-touch page faults.
    const double w0 = cpu_seconds();
    for (std::size_t i = 0; i < n; ++i) (void)loop.create_task(bare_sleeper(delays[i]));
    result.warm_create_rate = n / (cpu_seconds() - w0);
    co_await sleep(0s);
    co_await sleep(max_delay + 1ms);
  }
  co_return result;
}

Result run_one(bool virtual_clock, std::size_t n) {
  if (virtual_clock) {
    VirtualClock clock;
    EventLoop loop(clock);
    return loop.run(sleep_many("virtual", n, 1ms, 100s, true));
  }
  EventLoop loop;
  return loop.run(sleep_many("real", n, 1s, 2s, false));
}

bool passed(const Result& r) {
  return r.woken == r.tasks && !r.woke_early && (!r.order_checked || r.woke_in_order);
}

const char* wake_check(const Result& r) {
  if (!passed(r)) return "FAIL";
  return r.order_checked ? "OK (order)" : "OK (count)";
}

void print_json(const Result& r) {
  std::printf(
      "{\"run\": \"%s\", \"tasks\": %zu, \"created_bytes_per_task\": %.1f, "
      "\"sleeping_bytes_per_task\": %.1f, \"live_heap_bytes_per_task\": %.1f, "
      "\"new_calls_per_task\": %.2f, \"create_rate\": %.0f, \"start_rate\": %.0f, "
      "\"warm_create_rate\": %.0f, "
      "\"woken\": %zu, \"woke_early\": %s, \"order_checked\": %s, \"woke_in_order\": %s, "
      "\"ok\": %s}\n",
      r.run, r.tasks, r.created_bytes_per_task, r.sleeping_bytes_per_task,
      r.live_heap_bytes_per_task, r.new_calls_per_task, r.create_rate, r.start_rate,
      r.warm_create_rate, r.woken, r.woke_early ? "true" : "false",
      r.order_checked ? "true" : "false", r.woke_in_order ? "true" : "false",
      passed(r) ? "true" : "false");
}

void print_table(const std::vector<Result>& results) {
  std::printf("%-8s %8s %11s %11s %11s %9s %11s %11s %14s %11s\n", "run", "tasks", "RSS B/task",
              "RSS B/task", "heap B/task", "new/task", "create/s", "create/s", "create+start/s",
              "wake check");
  std::printf("%-8s %8s %11s %11s %11s %9s %11s %11s %14s %11s\n", "", "", "(created)", "(asleep)",
              "(asleep)", "", "(cold)", "(warm)", "", "");
  for (const Result& r : results) {
    std::printf("%-8s %8zu %11.1f %11.1f %11.1f %9.2f %11.0f %11.0f %14.0f %11s\n", r.run, r.tasks,
                r.created_bytes_per_task, r.sleeping_bytes_per_task, r.live_heap_bytes_per_task,
                r.new_calls_per_task, r.create_rate, r.warm_create_rate, r.start_rate,
                wake_check(r));
  }
}

// Runs one measurement in a forked child: a second run in the same process
// would reuse pages the first one freed and show almost no growth. The child
// sends its Result back through a pipe.
bool run_in_child(bool virtual_clock, std::size_t n, Result& result) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    close(fds[0]);
    const Result r = run_one(virtual_clock, n);
    const ssize_t written = write(fds[1], &r, sizeof r);
    _exit(written == static_cast<ssize_t>(sizeof r) ? 0 : 1);
  }
  close(fds[1]);
  const ssize_t got = read(fds[0], &result, sizeof result);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return got == static_cast<ssize_t>(sizeof result) && WIFEXITED(status) &&
         WEXITSTATUS(status) == 0;
}

}  // namespace
}  // namespace taskwire

int main(int argc, char** argv) {
  using namespace taskwire;
  std::size_t n = 1'000'000;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--tasks=", 8) == 0) {
      n = std::strtoull(argv[i] + 8, nullptr, 10);
    } else if (std::strcmp(argv[i], "--json") == 0) {
      json = true;
    } else {
      std::fprintf(stderr, "usage: %s [--tasks=N] [--json]\n", argv[0]);
      return 2;
    }
  }
  if (n == 0 || n > UINT32_MAX) {
    std::fprintf(stderr, "task_memory: --tasks must be in 1..%u\n", UINT32_MAX);
    return 2;
  }

  std::vector<Result> results;
  for (bool virtual_clock : {true, false}) {
    Result r{};
    if (!run_in_child(virtual_clock, n, r)) {
      std::fprintf(stderr, "task_memory: the %s-clock run failed\n",
                   virtual_clock ? "virtual" : "real");
      return 1;
    }
    results.push_back(r);
  }

  if (json) {
    for (const Result& r : results) print_json(r);
  } else {
    print_table(results);
  }
  for (const Result& r : results) {
    if (!passed(r)) return 1;
  }
  return 0;
}
