// The classic asyncio exercises, built from remote wait_random tasks:
//   wait_n(n, max_delay)       the delays in completion order (ascending,
//                              without sorting)
//   task_wait_n(n, max_delay)  the same, built on create_task
//   measure_time(n, max_delay) the average time per task
//
//   bazel run //client/examples:wait_n -- [--server HOST:PORT] [N MAX_DELAY]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "client/client.h"
#include "core/as_completed.h"
#include "core/gather.h"

namespace {

using taskwire::EventLoop;
using taskwire::Task;
using taskwire::TaskHandle;
using taskwire::client::Client;
using taskwire::client::json_value;
using taskwire::client::Value;

// A remote wait_random: sleeps up to max_delay seconds, returns the delay.
Task<double> wait_random(Client& client, double max_delay) {
  Value delay = co_await client.create_task(
      "wait_random", json_value("{\"max_delay\": " + std::to_string(max_delay) + "}"));
  co_return delay.number_value();
}

// Runs n wait_randoms concurrently; the delays in the order they finish.
Task<std::vector<double>> wait_n(Client& client, int n, double max_delay) {
  std::vector<TaskHandle<double>> tasks;
  for (int i = 0; i < n; ++i)
    tasks.push_back(EventLoop::current()->create_task(wait_random(client, max_delay)));
  std::vector<double> delays;
  auto pending = taskwire::as_completed(std::move(tasks));
  while (!pending.empty()) delays.push_back((co_await pending.next()).result());
  co_return delays;
}

// As wait_n, with the remote tasks started by create_task directly.
Task<std::vector<double>> task_wait_n(Client& client, int n, double max_delay) {
  std::vector<TaskHandle<Value>> tasks;
  for (int i = 0; i < n; ++i) {
    tasks.push_back(client
                        .create_task("wait_random", json_value("{\"max_delay\": " +
                                                               std::to_string(max_delay) + "}"))
                        .handle());
  }
  std::vector<double> delays;
  auto pending = taskwire::as_completed(std::move(tasks));
  while (!pending.empty()) delays.push_back((co_await pending.next()).result().number_value());
  co_return delays;
}

void print(const char* name, const std::vector<double>& delays) {
  std::printf("%s: [", name);
  for (std::size_t i = 0; i < delays.size(); ++i) std::printf("%s%.6f", i ? ", " : "", delays[i]);
  std::printf("]\n");
}

}  // namespace

int main(int argc, char** argv) {
  taskwire::client::ClientOptions options;
  std::vector<const char*> positional;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--server") == 0 && i + 1 < argc) {
      options.target = argv[++i];
    } else {
      positional.push_back(argv[i]);
    }
  }
  int n = positional.size() > 0 ? std::atoi(positional[0]) : 5;
  double max_delay = positional.size() > 1 ? std::atof(positional[1]) : 1.0;
  EventLoop loop;
  Client client(loop, options);
  try {
    print("wait_n", loop.run(wait_n(client, n, max_delay)));
    print("task_wait_n", loop.run(task_wait_n(client, n, max_delay)));
    auto start = std::chrono::steady_clock::now();
    loop.run(wait_n(client, n, max_delay));
    std::chrono::duration<double> total = std::chrono::steady_clock::now() - start;
    std::printf("measure_time: %.6f s per task (%d tasks, max_delay %g s)\n", total.count() / n, n,
                max_delay);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wait_n: %s\n", e.what());
    return 1;
  }
  return 0;
}
