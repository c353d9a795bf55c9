// What one cross-thread hand-off costs on this machine: two threads pass a
// token back and forth through a mutex and condition variable, the way
// EventLoop::post wakes an idle loop. taskwired hands every call from
// gRPC's thread to its loop thread; the echo servers do not. Prints one
// JSON line with the round trip's p50 and p99 (two wake-ups each).
//
//   handoff_bench [--round-trips 20000]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "bench/proc_stats.h"

namespace {

using taskwire::bench::quantile;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Round trips between two threads through a mutex and condition variable"};
  long round_trips = 20'000;
  app.add_option("--round-trips", round_trips, "Measured round trips")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  using Clock = std::chrono::steady_clock;

  std::mutex mutex;
  std::condition_variable to_worker, to_main;
  long sent = 0, answered = 0;  // Guarded by mutex.
  const long warmup = round_trips / 10;
  std::thread worker([&] {
    std::unique_lock lock(mutex);
    for (long i = 1; i <= warmup + round_trips; ++i) {
      to_worker.wait(lock, [&] { return sent >= i; });
      answered = i;
      to_main.notify_one();
    }
  });
  std::vector<std::int64_t> ns;
  ns.reserve(round_trips);
  for (long i = 1; i <= warmup + round_trips; ++i) {
    auto start = Clock::now();
    {
      std::lock_guard lock(mutex);
      sent = i;
    }
    to_worker.notify_one();
    std::unique_lock lock(mutex);
    to_main.wait(lock, [&] { return answered >= i; });
    lock.unlock();
    if (i > warmup) ns.push_back((Clock::now() - start) / std::chrono::nanoseconds(1));
  }
  worker.join();
  std::sort(ns.begin(), ns.end());
  std::printf("{\"round_trips\": %ld, \"p50_us\": %.1f, \"p99_us\": %.1f}\n", round_trips,
              quantile(ns, 0.5) / 1e3, quantile(ns, 0.99) / 1e3);
  return 0;
}
