#pragma once

#include <chrono>
#include <cstddef>

#include "core/clock.h"

namespace taskwire::server {

// What the server accepts and keeps. Each is a flag of taskwired.
struct Limits {
  // Unfinished tasks at once; past it CreateTask is RESOURCE_EXHAUSTED.
  std::size_t max_pending_tasks = 1'000'000;
  // Serialized size of one task's args.
  std::size_t max_args_bytes = 64 * 1024;
  // Ids (or tasks, for CreateTasks) in one request.
  std::size_t max_ids_per_request = 100'000;
  // How long a finished task is kept before it is evicted.
  Duration retention = std::chrono::hours(1);
  // How many finished tasks are kept at most; the oldest go first.
  std::size_t max_retained_tasks = 1'000'000;
  // Events a WatchTasks stream may fall behind by before it is ended.
  std::size_t watch_backlog = 10'000;
};

}  // namespace taskwire::server
