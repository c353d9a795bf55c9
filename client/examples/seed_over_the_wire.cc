// The seed's three asyncio programs, with every sleep a remote task on
// taskwired. Each prints what the seed prints and how long it took.
//
//   bazel run //client/examples:seed_over_the_wire -- [--server HOST:PORT]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "client/client.h"
#include "core/gather.h"

namespace {

using taskwire::EventLoop;
using taskwire::Task;
using taskwire::client::Client;
using taskwire::client::json_value;

// A remote sleep of `seconds`, then print `what`: say_after from the seed.
Task<void> say_after(Client& client, double seconds, std::string what) {
  co_await client.create_task("sleep",
                              json_value("{\"seconds\": " + std::to_string(seconds) + "}"));
  std::printf("%s\n", what.c_str());
}

Task<void> one_remote_task(Client& client) { co_await say_after(client, 1, "hello"); }

Task<void> gather_two(Client& client) {
  co_await taskwire::gather(say_after(client, 2, "task1 (2 s)"),
                            say_after(client, 1, "task2 (1 s)"));
}

Task<void> create_then_await(Client& client) {
  auto task1 = EventLoop::current()->create_task(say_after(client, 1, "hello"));
  auto task2 = EventLoop::current()->create_task(say_after(client, 2, "world"));
  co_await task1;
  co_await task2;
}

template <typename Program>
void timed(const char* title, Client& client, EventLoop& loop, Program program) {
  std::printf("== %s\n", title);
  auto start = std::chrono::steady_clock::now();
  loop.run(program(client));
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::printf("finished in %.3f s\n\n", took.count());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  taskwire::client::ClientOptions options;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--server") == 0) options.target = argv[i + 1];
  }
  EventLoop loop;
  Client client(loop, options);
  try {
    timed("one remote task awaited (sleep 1 s)", client, loop, one_remote_task);
    timed("gather of remote sleeps of 2 s and 1 s (about 2 s, not 3)", client, loop, gather_two);
    timed("create_task, then await", client, loop, create_then_await);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "seed_over_the_wire: %s\n", e.what());
    return 1;
  }
  return 0;
}
