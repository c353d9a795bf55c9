// Micro-benchmarks of the core runtime, one per issue target:
//   a) create + run + await of a trivial task (sequential and batched),
//   b) a chain of nested co_awaits (ns per level),
//   d) timer arm + cancel with 1K..1M timers already pending, on the
//      TimerHeap directly and through call_later + CallbackHandle::cancel.
// (c, a million sleeping tasks, is a plain binary: task_memory.cc.)
//
// Every benchmark sets items_per_second so that run_core_bench.sh can compare
// one "item" (a task, a nesting level, an arm+cancel pair) with the same item
// measured in asyncio by asyncio_bench.py.

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "core/clock.h"
#include "core/detail/timer_heap.h"
#include "core/event_loop.h"
#include "core/task.h"
#include "core/task_handle.h"

namespace taskwire {
namespace {

using namespace std::chrono_literals;

Task<int> trivial() { co_return 1; }

// --- a) create + run + await ------------------------------------------------

// asyncio: `await asyncio.create_task(trivial())` in a loop. Each item is one
// task created, scheduled, run by the loop, and awaited by the benchmark task
// (which suspends and is woken through the ready queue: two loop steps).
void BM_CreateAwaitSequential(benchmark::State& state) {
  EventLoop loop;
  auto body = [&state]() -> Task<void> {
    EventLoop& loop = *EventLoop::current();
    for (auto _ : state) {
      int value = co_await loop.create_task(trivial());
      benchmark::DoNotOptimize(value);
    }
  };
  loop.run(body());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CreateAwaitSequential);

// asyncio: create N tasks, then await each of them in turn. The loop runs the
// N tasks in one pass, so the benchmark task is woken at most once per batch.
void BM_CreateAwaitBatched(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  EventLoop loop;
  auto body = [&state, batch]() -> Task<void> {
    EventLoop& loop = *EventLoop::current();
    std::vector<TaskHandle<int>> handles;
    handles.reserve(batch);
    for (auto _ : state) {
      for (std::size_t i = 0; i < batch; ++i) handles.push_back(loop.create_task(trivial()));
      int sum = 0;
      for (auto& handle : handles) sum += co_await handle;
      benchmark::DoNotOptimize(sum);
      handles.clear();
    }
  };
  loop.run(body());
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_CreateAwaitBatched)->Arg(100)->Arg(1000);

// --- b) nested co_await chain -----------------------------------------------

Task<int> nested(int depth) {
  if (depth == 0) co_return 0;
  co_return 1 + co_await nested(depth - 1);
}

// One item is one level: allocating a frame, transferring into it, returning
// its value through symmetric transfer, and destroying the frame.
void BM_NestedAwaitChain(benchmark::State& state) {
  const int depth = static_cast<int>(state.range(0));
  EventLoop loop;
  auto body = [&state, depth]() -> Task<void> {
    for (auto _ : state) {
      int levels = co_await nested(depth);
      benchmark::DoNotOptimize(levels);
    }
  };
  loop.run(body());
  state.SetItemsProcessed(state.iterations() * depth);
}
BENCHMARK(BM_NestedAwaitChain)->Arg(1000);

// --- d) timer arm + cancel with N pending ---------------------------------------

// Deadlines are precomputed so that the timed loop measures the heap, not the
// random number generator. They are uniform over the same range as the
// pending timers', so a new timer lands at a random depth rather than always
// at the bottom (arming "now + fixed timeout" would be the easier case).
constexpr Duration kDeadlineRange = 1000s;
constexpr std::size_t kDeadlineCount = 1 << 14;  // A power of two: cheap cycling.

std::vector<Duration> random_delays(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<Duration::rep> dist(1, kDeadlineRange.count());
  std::vector<Duration> delays(count);
  for (auto& delay : delays) delay = Duration(dist(rng));
  return delays;
}

class BenchTimer final : public detail::TimerNode {
 public:
  void fire() override {}
};

void BM_TimerHeapArmCancel(benchmark::State& state) {
  const auto pending = static_cast<std::size_t>(state.range(0));
  detail::TimerHeap heap;
  // One allocation for all pending timers: TimerNode cannot be moved, and
  // separate allocations would only add noise to the set-up.
  auto timers = std::make_unique<BenchTimer[]>(pending);
  const std::vector<Duration> fill = random_delays(pending, 1);
  for (std::size_t i = 0; i < pending; ++i) heap.arm(&timers[i], TimePoint(fill[i]));

  const std::vector<Duration> delays = random_delays(kDeadlineCount, 2);
  BenchTimer timer;
  std::size_t i = 0;
  for (auto _ : state) {
    heap.arm(&timer, TimePoint(delays[i++ & (kDeadlineCount - 1)]));
    heap.cancel(&timer);
  }
  state.SetItemsProcessed(state.iterations());
  while (!heap.empty()) heap.pop();
}
BENCHMARK(BM_TimerHeapArmCancel)->RangeMultiplier(10)->Range(1000, 1000000);

// Not an issue target, but the other half of the story: arm+cancel above
// touches the same few heap slots every time, so they stay in cache. Moving
// a random pending timer (a connection's idle timeout being pushed back)
// touches a random slot and node, which are cache misses once the heap
// outgrows the cache: the algorithm stays flat, memory latency does not.
void BM_TimerHeapRearmRandom(benchmark::State& state) {
  const auto pending = static_cast<std::size_t>(state.range(0));
  detail::TimerHeap heap;
  auto timers = std::make_unique<BenchTimer[]>(pending);
  const std::vector<Duration> fill = random_delays(pending, 1);
  for (std::size_t i = 0; i < pending; ++i) heap.arm(&timers[i], TimePoint(fill[i]));

  const std::vector<Duration> delays = random_delays(kDeadlineCount, 2);
  std::mt19937_64 rng(3);
  std::vector<std::size_t> victims(kDeadlineCount);
  for (auto& victim : victims) victim = rng() % pending;
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t k = i++ & (kDeadlineCount - 1);
    BenchTimer& timer = timers[victims[k]];
    heap.cancel(&timer);
    heap.arm(&timer, TimePoint(delays[k]));
  }
  state.SetItemsProcessed(state.iterations());
  while (!heap.empty()) heap.pop();
}
BENCHMARK(BM_TimerHeapRearmRandom)->RangeMultiplier(10)->Range(1000, 1000000);

// The public path: call_later allocates a CallbackEntry holding a
// std::function, arms it, and cancel removes it from the heap at once; the
// entry is freed when the handle goes. Uses the real clock, as an
// application would, so each arm also reads the time.
void BM_CallLaterCancel(benchmark::State& state) {
  const auto pending = static_cast<std::size_t>(state.range(0));
  EventLoop loop;
  std::vector<CallbackHandle> fill_handles;
  fill_handles.reserve(pending);
  for (Duration delay : random_delays(pending, 1)) {
    fill_handles.push_back(loop.call_later(delay, [] {}));
  }

  const std::vector<Duration> delays = random_delays(kDeadlineCount, 2);
  std::size_t i = 0;
  for (auto _ : state) {
    CallbackHandle handle = loop.call_later(delays[i++ & (kDeadlineCount - 1)], [] {});
    handle.cancel();
  }
  state.SetItemsProcessed(state.iterations());
  if (loop.pending_timer_count() != pending) state.SkipWithError("heap lost or kept timers");
}
BENCHMARK(BM_CallLaterCancel)->RangeMultiplier(10)->Range(1000, 1000000);

}  // namespace
}  // namespace taskwire
