// The seed's three asyncio programs on the core runtime, in real time:
// what a new user runs before the server exists.
#include <chrono>
#include <cstdio>
#include <string>

#include "core/event_loop.h"
#include "core/gather.h"
#include "core/sleep.h"

namespace {

using namespace std::chrono_literals;
using taskwire::Duration;
using taskwire::EventLoop;
using taskwire::Task;

Task<void> say_after(Duration delay, std::string what) {
  co_await taskwire::sleep(delay);
  std::printf("%s\n", what.c_str());
}

Task<void> one_coroutine() { co_await say_after(1s, "hello"); }

Task<void> gather_two() {
  co_await taskwire::gather(say_after(2s, "task1 (2 s)"), say_after(1s, "task2 (1 s)"));
}

Task<void> create_then_await() {
  auto task1 = EventLoop::current()->create_task(say_after(1s, "hello"));
  auto task2 = EventLoop::current()->create_task(say_after(2s, "world"));
  co_await task1;
  co_await task2;
}

void timed(const char* title, Task<void> program) {
  std::printf("== %s\n", title);
  EventLoop loop;
  auto start = std::chrono::steady_clock::now();
  loop.run(std::move(program));
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::printf("finished in %.3f s\n\n", took.count());
}

}  // namespace

int main() {
  timed("one coroutine awaiting sleep(1 s)", one_coroutine());
  timed("gather of sleeps of 2 s and 1 s (about 2 s, not 3)", gather_two());
  timed("create_task, then await", create_then_await());
  return 0;
}
